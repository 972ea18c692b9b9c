//! The live ratio sampler: `TraceIdRatioBased` whose rate can change while spans are
//! being made, deciding bit for bit as the chosen SDK decides.
//!
//! It is wrapped in the SDK's own `Sampler::ParentBased`, so children follow their root,
//! as `ParentBased(root=TraceIdRatioBased(rate))` does in the seed. The rate lives in an
//! atomic (f64 bits), so a slider moves it without rebuilding the provider: the SDK takes
//! any `ShouldSample` as the root of `Sampler::ParentBased(Box<dyn ShouldSample>)`
//! (opentelemetry_sdk 0.33.1 `src/trace/sampler.rs`, trait `ShouldSample` and enum `Sampler`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use opentelemetry::trace::{Link, SpanKind, TraceContextExt, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

/// Whose arithmetic decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RatioFormula {
    /// opentelemetry-sdk 1.41, `sampling.py` `TraceIdRatioBased`:
    /// `bound = round(rate * 2**64)`; sampled iff `trace_id & (2**64 - 1) < bound`.
    Python,
    /// opentelemetry_sdk 0.33, `sampler.rs` `sample_based_on_probability`:
    /// rate >= 1 samples all; else `bound = (max(rate, 0) * 2^63) as u64` (truncating);
    /// sampled iff `(low 64 bits, big-endian) >> 1 < bound`.
    Rust,
    /// @opentelemetry/sdk-trace 2.12, `TraceIdRatioBasedSampler`: the four 32-bit words of
    /// the id XORed together, sampled iff below `floor(rate * 0xffffffff)` (2^32 at 1).
    Js,
}

impl RatioFormula {
    /// The arithmetic of the SDK a semantics profile follows (the stock processor is
    /// the Rust SDK's).
    pub fn of(semantics: crate::config::Semantics) -> RatioFormula {
        match semantics {
            crate::config::Semantics::Python => RatioFormula::Python,
            crate::config::Semantics::Js => RatioFormula::Js,
            crate::config::Semantics::Rust | crate::config::Semantics::Sdk => RatioFormula::Rust,
        }
    }

    /// Whether `TraceIdRatioBased(rate)` samples `trace_id`, as this SDK decides.
    pub fn decide(self, rate: f64, trace_id: u128) -> bool {
        match self {
            RatioFormula::Python => python_decision(rate, trace_id),
            RatioFormula::Rust => rust_decision(rate, trace_id),
            RatioFormula::Js => js_decision(rate, trace_id),
        }
    }
}

/// The Python SDK's decision (`get_bound_for_rate` and `should_sample`).
pub fn python_decision(rate: f64, trace_id: u128) -> bool {
    // `round(rate * (TRACE_ID_LIMIT + 1))`: the float product is exact (a power of two
    // scale), and Python's round() on a float rounds half to even.
    let bound = (rate * 18_446_744_073_709_551_616.0).round_ties_even();
    let low = (trace_id & u64::MAX as u128) as u64;
    // bound can be 2^64 (rate 1), past u64; compare in f64 only where exact, else in u128.
    (low as u128) < bound as u128
}

/// The Rust SDK's decision, transcribed from `sample_based_on_probability`.
pub fn rust_decision(rate: f64, trace_id: u128) -> bool {
    if rate >= 1.0 {
        return true;
    }
    let bound = (rate.max(0.0) * (1u64 << 63) as f64) as u64;
    let low = trace_id as u64; // bytes 8..16 of the big-endian id are the low 64 bits
    (low >> 1) < bound
}

/// The JavaScript SDK's decision: `TraceIdRatioBasedSampler` (opentelemetry-js v2.10.0
/// `packages/sdk-trace/src/sampler/TraceIdRatioBasedSampler.ts` l. 15-52, unchanged in
/// 2.12.1): `_upperBound` is 2^32 at rate 1, else `floor(rate * 0xffffffff)`;
/// `_accumulate` XORs the id's four 32-bit words (its hex, 8 digits at a time).
pub fn js_decision(rate: f64, trace_id: u128) -> bool {
    let rate = if rate.is_nan() {
        0.0
    } else {
        rate.clamp(0.0, 1.0)
    };
    let bound = if rate >= 1.0 {
        1u64 << 32
    } else {
        (rate * f64::from(u32::MAX)).floor() as u64
    };
    let accumulation = (0..4).fold(0u32, |acc, word| {
        acc ^ (trace_id >> (96 - 32 * word)) as u32
    });
    u64::from(accumulation) < bound
}

/// A `TraceIdRatioBased` sampler whose rate is read from an atomic on every decision.
#[derive(Clone, Debug)]
pub struct LiveRatioSampler {
    rate_bits: Arc<AtomicU64>,
    formula: RatioFormula,
}

/// The handle a slider holds to change the rate of every sampler built from it.
#[derive(Clone, Debug)]
pub struct SampleRate(Arc<AtomicU64>);

impl SampleRate {
    pub fn new(rate: f64) -> Self {
        SampleRate(Arc::new(AtomicU64::new(rate.to_bits())))
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Relaxed))
    }

    /// Callers validate the range (config does); the formulas clamp anyway.
    pub fn set(&self, rate: f64) {
        self.0.store(rate.to_bits(), Relaxed);
    }

    /// `ParentBased(LiveRatio)`, the sampler of the seed.
    pub fn parent_based(&self, formula: RatioFormula) -> Sampler {
        Sampler::ParentBased(Box::new(LiveRatioSampler {
            rate_bits: self.0.clone(),
            formula,
        }))
    }
}

impl ShouldSample for LiveRatioSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        _name: &str,
        _span_kind: &SpanKind,
        _attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let rate = f64::from_bits(self.rate_bits.load(Relaxed));
        let id = u128::from_be_bytes(trace_id.to_bytes());
        let sampled = self.formula.decide(rate, id);
        SamplingResult {
            decision: if sampled {
                SamplingDecision::RecordAndSample
            } else {
                SamplingDecision::Drop
            },
            attributes: Vec::new(),
            // As the SDK's samplers do: keep the parent's trace state.
            trace_state: match parent_context {
                Some(cx) => cx.span().span_context().trace_state().clone(),
                None => TraceState::default(),
            },
        }
    }
}
