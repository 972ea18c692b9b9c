//! The open-loop arrival process as a pure schedule: exponential gaps at `rate_per_s`,
//! plus `burst_size` arrivals every `burst_every_s`, as offsets from the start of
//! traffic. The real-time dispatcher ([`super::Traffic`]) and the virtual-time engine
//! (`crate::sim`) both read it, so one seed gives both the same arrival times.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::config::WorkloadSettings;

/// Arrivals due at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// Offset from the start of traffic.
    pub at: Duration,
    pub count: usize,
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
            (Some(a), Some(b)) if b < a => Some(Due {
                at: b,
                count: self.burst_size,
            }),
            (Some(a), _) => Some(Due { at: a, count: 1 }),
            (None, Some(b)) => Some(Due {
                at: b,
                count: self.burst_size,
            }),
            (None, None) => None,
        }
    }

    /// Moves past what [`Schedule::peek`] returned.
    pub fn advance(&mut self) {
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
}
