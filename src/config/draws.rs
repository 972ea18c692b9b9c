//! Reproducible pseudo-random draws, shared by the real pipeline and the virtual clock.
//!
//! A scenario's randomness beyond its arrival times (which request's trace is sampled,
//! which export gets an injected error, how much jitter it waits, how long the python
//! exporter backs off) is a pure function of
//! the scenario's seed and an ordinal, so the threaded run and the simulator draw the
//! same values in the same order and can be compared run for run, not only on average.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// One round of splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
/// generators", 2014): consecutive inputs give unrelated outputs.
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Which sequence a draw belongs to, so that one fault's draws do not shift another's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The collector's extra latency, one per request it answers.
    Jitter = 1,
    /// Whether the collector injects an error, one per request it decodes.
    InjectedError = 2,
    /// The python exporter's backoff factor, one per failed try of an export.
    PythonBackoff = 3,
}

/// One stream's draws in the order they are taken: the n-th [`Sequence::next`] is
/// `unit(seed, stream, n)`. The count is atomic, so the collector's request tasks share
/// one sequence; the simulator holds its own of the same streams.
#[derive(Debug)]
pub struct Sequence {
    seed: u64,
    stream: Stream,
    taken: AtomicU64,
}

impl Sequence {
    pub fn new(seed: u64, stream: Stream) -> Sequence {
        Sequence {
            seed,
            stream,
            taken: AtomicU64::new(0),
        }
    }

    /// The next draw, in `[0, 1)`.
    pub fn next(&self) -> f64 {
        unit(self.seed, self.stream, self.taken.fetch_add(1, Relaxed))
    }
}

/// The `ordinal`-th draw of `stream` under `seed`, uniform in `[0, 1)`.
pub fn unit(seed: u64, stream: Stream, ordinal: u64) -> f64 {
    let bits = splitmix64(splitmix64(seed ^ (stream as u64) << 56) ^ ordinal);
    // The top 53 bits, as `rand`'s `random::<f64>()` builds a double in [0, 1).
    (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_repeat_differ_by_stream_and_spread_evenly() {
        assert_eq!(
            unit(5, Stream::Jitter, 9),
            unit(5, Stream::Jitter, 9),
            "a draw is a function of its inputs"
        );
        assert_ne!(
            unit(5, Stream::Jitter, 9),
            unit(5, Stream::InjectedError, 9)
        );
        let draws: Vec<f64> = (0..10_000)
            .map(|i| unit(1, Stream::InjectedError, i))
            .collect();
        assert!(draws.iter().all(|u| (0.0..1.0).contains(u)));
        let below = draws.iter().filter(|u| **u < 0.3).count();
        assert!(
            (2_750..=3_250).contains(&below),
            "{below} of 10,000 below 0.3"
        );
        let sequence = Sequence::new(1, Stream::InjectedError);
        assert_eq!([sequence.next(), sequence.next()], [draws[0], draws[1]]);
    }
}
