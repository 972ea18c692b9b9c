//! The open-loop arrival process as a pure schedule: exponential gaps at `rate_per_s`,
//! plus `burst_size` arrivals every `burst_every_s`, as offsets from the start of
//! traffic. The real-time dispatcher ([`super::Traffic`]) and the virtual-time engine
//! (`crate::sim`) both read it, so one seed gives both the same arrival times, and, through
//! [`trace_id`], the same trace id for each arrival.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::WorkloadSettings;
use crate::config::draws::splitmix64;

/// Arrivals due at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Offset from the start of traffic.
    pub at: Duration,
    pub count: usize,
    /// The arrival index of the first of them: arrivals are numbered from 0 in the order
    /// the schedule gives them, refused ones included.
    pub first: u64,
}

/// The trace id of the request that arrived `index`-th in a scenario with `seed`: two
/// rounds of splitmix64 ([`crate::config::draws`]) over the pair, so neighbouring
/// indices get unrelated bits and `TraceIdRatioBased`, which reads the low 64 bits,
/// samples them independently. Never 0, the invalid id.
pub fn trace_id(seed: u64, index: u64) -> u128 {
    let high = splitmix64(seed ^ splitmix64(index));
    let low = splitmix64(high ^ index.rotate_left(32));
    (u128::from(high) << 64 | u128::from(low)).max(1)
}

/// The arrivals of one scenario, earliest first; nothing at or after its duration.
#[derive(Clone, Debug)]
pub struct Schedule {
    rng: StdRng,
    rate_per_s: f64,
    end: Duration,
    next_arrival: Option<Duration>,
    burst_every: Option<Duration>,
    burst_size: usize,
    next_burst: Option<Duration>,
    /// Arrivals already given out.
    arrived: u64,
}

impl Schedule {
    pub fn new(settings: &WorkloadSettings) -> Schedule {
        let mut schedule = Schedule {
            rng: StdRng::seed_from_u64(settings.seed),
            rate_per_s: settings.rate_per_s,
            end: Duration::try_from_secs_f64(settings.duration_s).unwrap_or(Duration::ZERO),
            next_arrival: None,
            burst_every: (settings.burst_every_s > 0.0 && settings.burst_size > 0)
                .then(|| Duration::try_from_secs_f64(settings.burst_every_s).ok())
                .flatten(),
            burst_size: settings.burst_size,
            next_burst: None,
            arrived: 0,
        };
        schedule.next_arrival = schedule.gap().map(|gap| gap.min(schedule.end));
        schedule.next_burst = schedule.burst_every;
        schedule
    }

    /// Inverse transform of Exp(rate); `1 - u` is in (0, 1], so ln is finite.
    fn gap(&mut self) -> Option<Duration> {
        if self.rate_per_s <= 0.0 {
            return None;
        }
        let u: f64 = self.rng.random();
        Duration::try_from_secs_f64(-(1.0 - u).ln() / self.rate_per_s).ok()
    }

    /// The next arrivals due (a single arrival before a burst at the same instant), or
    /// `None` once the duration is reached.
    pub fn peek(&self) -> Option<Due> {
        let single = self.next_arrival.filter(|at| *at < self.end);
        let burst = self.next_burst.filter(|at| *at < self.end);
        match (single, burst) {
            (Some(a), Some(b)) if b < a => Some(self.due(b, self.burst_size)),
            (Some(a), _) => Some(self.due(a, 1)),
            (None, Some(b)) => Some(self.due(b, self.burst_size)),
            (None, None) => None,
        }
    }

    fn due(&self, at: Duration, count: usize) -> Due {
        Due {
            at,
            count,
            first: self.arrived,
        }
    }

    /// Moves past what [`Schedule::peek`] returned.
    pub fn advance(&mut self) {
        if let Some(due) = self.peek() {
            self.arrived += due.count as u64;
        }
        let single = self.next_arrival.filter(|at| *at < self.end);
        let burst = self.next_burst.filter(|at| *at < self.end);
        match (single, burst) {
            (Some(a), Some(b)) if b < a => self.next_burst = Some(b + self.burst_every_or_end()),
            (Some(a), _) => {
                let next = self.gap().and_then(|gap| a.checked_add(gap));
                self.next_arrival = Some(next.unwrap_or(self.end).min(self.end));
            }
            (None, Some(b)) => self.next_burst = Some(b + self.burst_every_or_end()),
            (None, None) => {}
        }
    }

    fn burst_every_or_end(&self) -> Duration {
        self.burst_every.unwrap_or(self.end)
    }

    /// When traffic ends.
    pub fn end(&self) -> Duration {
        self.end
    }
}

impl Iterator for Schedule {
    type Item = Due;

    fn next(&mut self) -> Option<Due> {
        let due = self.peek()?;
        self.advance();
        Some(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_one_schedule_bursts_on_time_nothing_past_the_end() {
        let settings = WorkloadSettings {
            duration_s: 3.0,
            rate_per_s: 50.0,
            burst_every_s: 1.0,
            burst_size: 7,
            ..crate::config::Settings::default().workload
        };
        let a: Vec<Due> = Schedule::new(&settings).collect();
        let b: Vec<Due> = Schedule::new(&settings).collect();
        assert_eq!(a, b);
        assert!(a.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(a.iter().all(|d| d.at < Duration::from_secs(3)));
        // Arrivals are numbered in order, a burst's with consecutive indices.
        assert!(
            a.windows(2)
                .all(|w| w[1].first == w[0].first + w[0].count as u64)
        );
        assert_eq!(a[0].first, 0);
        let bursts: Vec<Duration> = a.iter().filter(|d| d.count == 7).map(|d| d.at).collect();
        assert_eq!(bursts, [Duration::from_secs(1), Duration::from_secs(2)]);
        let singles = a.iter().filter(|d| d.count == 1).count();
        assert!(
            (90..=210).contains(&singles),
            "{singles} arrivals at 50/s for 3 s"
        );
        let other = WorkloadSettings {
            seed: 2,
            ..settings
        };
        assert_ne!(a, Schedule::new(&other).collect::<Vec<_>>());
    }

    #[test]
    fn trace_ids_are_repeatable_distinct_and_sampled_at_the_rate() {
        assert_eq!(trace_id(7, 3), trace_id(7, 3));
        assert_ne!(trace_id(7, 3), trace_id(8, 3));
        let ids: std::collections::HashSet<u128> = (0..10_000).map(|i| trace_id(1, i)).collect();
        assert_eq!(ids.len(), 10_000);
        // The ratio sampler keeps ids whose low 64 bits are below rate * 2^64.
        let kept = ids.iter().filter(|id| (**id as u64) < u64::MAX / 4).count();
        assert!(
            (2_250..=2_750).contains(&kept),
            "{kept} of 10,000 below a quarter"
        );
    }
}
