//! Trace ids a request chooses: the provider's [`IdGenerator`] gives a root span the id
//! its request set for the calling thread, and a random one otherwise.
//!
//! Why: below a sample rate of 1, `TraceIdRatioBased` decides on the trace id's bits, so
//! which requests are sampled depends on the ids. The workload derives each request's id
//! from the scenario's seed and the request's arrival index
//! ([`crate::workload::arrival::trace_id`]), and the virtual-time engine derives the same
//! ones, so both clocks sample exactly the same requests. The SDK's own generator would
//! draw from an unseeded per-thread RNG (opentelemetry_sdk 0.33.1,
//! `src/trace/id_generator/mod.rs`, `RandomIdGenerator`), which no second run can repeat.

use std::cell::Cell;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};

thread_local! {
    /// The id the next root span started on this thread takes, once.
    static NEXT_ROOT: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Runs `start` (which starts one root span) so that the root gets `trace_id`. Nothing
/// is left behind for a later span, whether or not `start` asked for an id (a no-op
/// tracer never does).
pub fn with_root_trace_id<R>(trace_id: u128, start: impl FnOnce() -> R) -> R {
    NEXT_ROOT.with(|next| next.set(Some(TraceId::from(trace_id))));
    let started = start();
    NEXT_ROOT.with(|next| next.set(None));
    started
}

/// The provider's id generator: the id set by [`with_root_trace_id`], else random.
/// Span ids are always random, as the SDK's.
#[derive(Debug, Default)]
pub struct RequestTraceIds {
    random: RandomIdGenerator,
}

impl IdGenerator for RequestTraceIds {
    fn new_trace_id(&self) -> TraceId {
        match NEXT_ROOT.with(Cell::take) {
            Some(id) if id != TraceId::INVALID => id,
            _ => self.random.new_trace_id(),
        }
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span, Tracer, TracerProvider};
    use opentelemetry_sdk::trace::SdkTracerProvider;

    #[test]
    fn a_root_takes_the_id_its_request_set_and_only_that_root() {
        let provider = SdkTracerProvider::builder()
            .with_id_generator(RequestTraceIds::default())
            .build();
        let tracer = provider.tracer("test");
        let id = 0x0123_4567_89ab_cdef_0011_2233_4455_6677_u128;
        let root = with_root_trace_id(id, || tracer.start("root"));
        assert_eq!(root.span_context().trace_id(), TraceId::from(id));
        let next = tracer.start("another root");
        assert_ne!(next.span_context().trace_id(), TraceId::from(id));
        assert_ne!(next.span_context().trace_id(), TraceId::INVALID);
    }
}
