//! The steady state of a runner that is never shut down, as the window's live runner is:
//! traffic goes on past a measured window, the counts' growth over the window (after a
//! warm-up left out) is what the run reports, per second too, and the run stops at the
//! window's end with what is still queued counted as queued.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Event, Sim};
use crate::config::Settings;
use crate::record::SpanCounts;

/// The window a steady-state run measures: `measured_s` after `warm_up_s`, no SIGTERM.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Steady {
    pub warm_up_s: f64,
    pub measured_s: f64,
}

impl Default for Steady {
    /// Two minutes after 30 s: at 30 s the queue of every shipped scenario has filled and
    /// emptied many times over (their schedule delays are at most 5 s, their bursts at most
    /// 2 s apart), and two minutes hold 60 to 120 of their bursts, so where a window starts
    /// in the burst pattern moves a rate by about 1%.
    fn default() -> Steady {
        Steady {
            warm_up_s: 30.0,
            measured_s: 120.0,
        }
    }
}

impl Steady {
    /// `base` as a steady-state run plays it: no SIGTERM, and traffic for the warm-up, the
    /// window and one second more (the run stops at the window's end, before the traffic
    /// does: an end of arrivals inside the window would drain the queue in it).
    pub fn settings(&self, base: &Settings) -> Settings {
        let mut settings = base.clone();
        settings.shutdown.at_s = None;
        settings.workload.duration_s = self.warm_up_s + self.measured_s + 1.0;
        settings
    }

    /// The header's words: `steady state: 2 min after 30 s warm-up, no SIGTERM`.
    pub fn describe(&self) -> String {
        let minutes = self.measured_s / 60.0;
        format!(
            "steady state: {minutes} min after {} s warm-up, no SIGTERM",
            self.warm_up_s
        )
    }
}

/// What the measured window saw: each count's growth over it, and per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SteadyState {
    pub warm_up_s: f64,
    pub measured_s: f64,
    pub created: u64,
    pub sampled: u64,
    pub exported: u64,
    pub received: u64,
    pub dropped_queue_full: u64,
    pub export_failed: u64,
    /// Sampled spans dropped or failed in the window (nothing is lost at a kill: no SIGTERM).
    pub lost: u64,
    pub created_per_s: f64,
    pub exported_per_s: f64,
    pub received_per_s: f64,
    pub dropped_per_s: f64,
    pub export_failed_per_s: f64,
    pub lost_per_s: f64,
}

impl SteadyState {
    fn between(steady: Steady, from: &SpanCounts, to: &SpanCounts) -> SteadyState {
        let dropped = |c: &SpanCounts| c.dropped_oldest + c.dropped_newest;
        let dropped_queue_full = dropped(to) - dropped(from);
        let export_failed = to.export_failed - from.export_failed;
        let lost = dropped_queue_full + export_failed;
        let per_s = |n: u64| n as f64 / steady.measured_s.max(f64::MIN_POSITIVE);
        let exported = to.exported - from.exported;
        let received = to.received - from.received;
        SteadyState {
            warm_up_s: steady.warm_up_s,
            measured_s: steady.measured_s,
            created: to.created - from.created,
            sampled: to.sampled - from.sampled,
            exported,
            received,
            dropped_queue_full,
            export_failed,
            lost,
            created_per_s: per_s(to.created - from.created),
            exported_per_s: per_s(exported),
            received_per_s: per_s(received),
            dropped_per_s: per_s(dropped_queue_full),
            export_failed_per_s: per_s(export_failed),
            lost_per_s: per_s(lost),
        }
    }
}

/// Where a steady-state run is: its window, and the counts when the window opened.
pub(super) struct Window {
    steady: Steady,
    from: Option<SpanCounts>,
}

impl Sim<'_> {
    /// Schedules the window's start and end.
    pub(super) fn steady_start(&mut self, steady: Steady) {
        self.steady = Some(Window { steady, from: None });
        let at = |s: f64| Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO);
        self.at(at(steady.warm_up_s), Event::WindowOpens);
        self.at(
            at(steady.warm_up_s + steady.measured_s),
            Event::WindowCloses,
        );
    }

    pub(super) fn window_opens(&mut self) {
        if let Some(window) = &mut self.steady {
            window.from = Some(self.spans);
        }
    }

    /// The window's end is the run's: the counts' growth is kept, and what is in the queue
    /// or in an export now is counted as queued.
    pub(super) fn window_closes(&mut self) {
        if let Some(Window {
            steady,
            from: Some(from),
        }) = &self.steady
        {
            self.out.steady = Some(SteadyState::between(*steady, from, &self.spans));
        }
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{TEST_COSTS, run_steady, test_settings};
    use super::*;

    /// `burst-overflow`'s traffic (400 requests of 8 spans every second, a backend 200 ms
    /// away, python): a queue of 4096 cannot hold what arrives between exports of 512, so
    /// the steady state drops every second; a queue of a million never fills.
    #[test]
    fn the_steady_state_drops_at_a_rate_and_counts_only_its_window() {
        let with_queue = |queue: &str| {
            test_settings(&[
                ("batch.max_queue_size", queue),
                ("batch.max_export_batch_size", "512"),
                ("batch.schedule_delay_ms", "5000"),
                ("workload.rate_per_s", "10"),
                ("workload.concurrency", "64"),
                ("workload.max_waiting", "1000"),
                ("workload.inference_ms", "2"),
                ("workload.upload_ms", "0"),
                ("workload.extra_spans", "5"),
                ("workload.burst_every_s", "1"),
                ("workload.burst_size", "400"),
                ("collector.latency_ms", "200"),
                ("shutdown.at_s", "2"),
            ])
        };
        let window = Steady {
            warm_up_s: 10.0,
            measured_s: 30.0,
        };
        let o = run_steady(&with_queue("4096"), &TEST_COSTS, window).unwrap();
        assert_eq!(o.spans.unaccounted(), 0, "{:?}", o.spans);
        assert!(o.shutdown.is_none() && !o.killed, "no SIGTERM");
        assert_eq!(o.duration_ms, 40_000.0, "the run ends with the window");
        let s = o.steady.expect("the window");
        assert!(s.dropped_queue_full > 0 && s.dropped_queue_full < o.spans.dropped_queue_full);
        assert_eq!(s.dropped_per_s, s.dropped_queue_full as f64 / 30.0);
        assert_eq!(s.lost, s.dropped_queue_full + s.export_failed);
        // About 3,280 spans a second arrive (410 requests of 8).
        assert!((3000.0..3600.0).contains(&s.created_per_s), "{s:?}");
        let big = run_steady(&with_queue("1000000"), &TEST_COSTS, window).unwrap();
        assert_eq!(big.steady.map(|s| s.dropped_queue_full), Some(0));
    }
}
