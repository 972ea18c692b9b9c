//! The load's timeline: its requests by when they ended, 100 ms a bucket (answered,
//! failed by kind, cut at the app's end, still in flight, and the latencies of those that
//! ended), the `load.timeline` of the report and what the window's request and latency
//! charts draw. Built from the final rows at the end, and request by request while the
//! load runs (the window's live section, [`Timeline::so_far`]); both the same way.
//!
//! Every request that was sent and ended is in exactly one bucket, the one its end falls
//! in, so the buckets' answered, failed and cut add up to `load`'s totals (`tally`), which
//! stay the totals' source.

use std::collections::BTreeMap;

use super::load::{FailedCounts, LoadBucket, LoadRequest, LoadSection, Outcome};

/// A bucket's length, ms: the probe's sampling interval.
pub const BUCKET_MS: f64 = 100.0;
/// Buckets kept: an hour at 10 a second, as the probe's own timeline; requests ending
/// past them still count in the totals.
pub const MAX_BUCKETS: usize = 36_000;

/// The timeline being built, one request (or one event of it) at a time.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// By bucket index (`t_ms / BUCKET_MS`); indexes between them are empty buckets.
    slots: BTreeMap<u64, Slot>,
    /// Every request counted so far, whether or not its bucket was kept.
    sent: u64,
    answered: u64,
    failed: FailedCounts,
    in_flight_at_end: u64,
}

/// One bucket and what its in-flight count and percentiles are made from.
#[derive(Clone, Debug, Default)]
struct Slot {
    bucket: LoadBucket,
    /// Requests sent in this bucket, and ended in it (whatever their outcome).
    sent: u64,
    ended: u64,
    latencies: Vec<f64>,
    /// The percentiles are older than `latencies`.
    stale: bool,
}

impl Timeline {
    /// The timeline of `rows` (a request sent and not ended is in flight to the end).
    pub fn of(rows: &[LoadRequest]) -> Vec<LoadBucket> {
        let mut timeline = Timeline::default();
        for r in rows {
            timeline.add(r);
        }
        timeline.buckets(None)
    }

    /// One request's row: its send and, if it ended, its end.
    pub fn add(&mut self, r: &LoadRequest) {
        let Some(sent_ms) = r.sent_ms else { return };
        self.sent(sent_ms);
        if let (Some(ended_ms), Some(outcome)) = (r.ended_ms, r.outcome) {
            self.ended(ended_ms, outcome, r.latency_ms);
        }
    }

    /// A request left at `sent_ms`.
    pub fn sent(&mut self, sent_ms: f64) {
        self.sent += 1;
        if let Some(slot) = self.slot(sent_ms) {
            slot.sent += 1;
        }
    }

    /// A request sent earlier ended at `ended_ms` with `outcome` (and, with a whole
    /// response, `latency_ms`).
    pub fn ended(&mut self, ended_ms: f64, outcome: Outcome, latency_ms: Option<f64>) {
        match outcome {
            Outcome::Answered => self.answered += 1,
            Outcome::InFlightAtEnd => self.in_flight_at_end += 1,
            // Never sent: never in a bucket.
            Outcome::NotSent => return,
            failure => {
                self.failed.add(failure);
            }
        }
        let Some(slot) = self.slot(ended_ms) else {
            return;
        };
        slot.ended += 1;
        let b = &mut slot.bucket;
        match outcome {
            Outcome::Answered => b.answered += 1,
            Outcome::InFlightAtEnd => b.in_flight_at_end += 1,
            failure => {
                b.failed.add(failure);
            }
        }
        if let Some(ms) = latency_ms {
            slot.latencies.push(ms);
            slot.stale = true;
        }
    }

    /// The bucket `t_ms` falls in, made if needed; `None` once [`MAX_BUCKETS`] are kept.
    fn slot(&mut self, t_ms: f64) -> Option<&mut Slot> {
        let index = (t_ms.max(0.0) / BUCKET_MS).floor() as u64;
        if !self.slots.contains_key(&index) && self.slots.len() >= MAX_BUCKETS {
            return None;
        }
        let slot = self.slots.entry(index).or_default();
        slot.bucket.t_ms = index as f64 * BUCKET_MS;
        Some(slot)
    }

    /// Every bucket from the first request's to the last one's (or to `until_ms`, while
    /// the load runs: the in-flight count goes on to now), empty ones included.
    pub fn buckets(&mut self, until_ms: Option<f64>) -> Vec<LoadBucket> {
        let (Some(&first), Some(&last)) = (self.slots.keys().next(), self.slots.keys().last())
        else {
            return Vec::new();
        };
        let until = until_ms.map_or(last, |ms| (ms.max(0.0) / BUCKET_MS).floor() as u64);
        let last = last.max(until).min(first + MAX_BUCKETS as u64 - 1);
        let mut out = Vec::with_capacity((last - first + 1) as usize);
        let mut in_flight: u64 = 0;
        for index in first..=last {
            let bucket = match self.slots.get_mut(&index) {
                Some(slot) => {
                    in_flight = (in_flight + slot.sent).saturating_sub(slot.ended);
                    slot.refresh();
                    LoadBucket {
                        in_flight,
                        ..slot.bucket.clone()
                    }
                }
                None => LoadBucket {
                    t_ms: index as f64 * BUCKET_MS,
                    in_flight,
                    ..LoadBucket::default()
                },
            };
            out.push(bucket);
        }
        out
    }

    /// `header` (where the load goes, when it started) with what has ended so far: the
    /// window's `load` section while the app runs. The request rows, the latency split
    /// and the `traces` section come only at the end, when every trace can be followed.
    pub fn so_far(&mut self, header: LoadSection, now_ms: f64) -> LoadSection {
        LoadSection {
            sent: self.sent,
            answered: self.answered,
            failed: self.failed,
            in_flight_at_end: self.in_flight_at_end,
            timeline: self.buckets(Some(now_ms)),
            ..header
        }
    }
}

impl Slot {
    /// Recomputes the percentiles if latencies came since.
    fn refresh(&mut self) {
        if !self.stale {
            return;
        }
        self.stale = false;
        let mut sorted = self.latencies.clone();
        sorted.sort_by(f64::total_cmp);
        self.bucket.latency_p50_ms = nearest_rank(&sorted, 0.5);
        self.bucket.latency_p99_ms = nearest_rank(&sorted, 0.99);
    }
}

/// The `q` quantile of sorted values by nearest rank: the smallest value with at least
/// `q` of them at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.max(1) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(sent_ms: f64, ended_ms: Option<f64>, outcome: Outcome) -> LoadRequest {
        let whole = matches!(outcome, Outcome::Answered | Outcome::Status5xx);
        LoadRequest {
            sent_ms: Some(sent_ms),
            ended_ms,
            outcome: Some(outcome),
            latency_ms: ended_ms.filter(|_| whole).map(|end| end - sent_ms),
            ..LoadRequest::default()
        }
    }

    /// Each ended request is in the bucket of its end, by outcome; the in-flight count is
    /// what was sent and not ended at each bucket's end; empty buckets keep their place.
    #[test]
    fn requests_land_in_the_bucket_of_their_end() {
        let rows = [
            row(10.0, Some(50.0), Outcome::Answered),
            row(20.0, Some(150.0), Outcome::Answered),
            row(30.0, Some(160.0), Outcome::Refused),
            row(40.0, Some(390.0), Outcome::InFlightAtEnd),
            row(60.0, Some(199.0), Outcome::Status5xx),
            LoadRequest {
                outcome: Some(Outcome::NotSent),
                ..LoadRequest::default()
            },
        ];
        let buckets = Timeline::of(&rows);
        let t: Vec<f64> = buckets.iter().map(|b| b.t_ms).collect();
        assert_eq!(t, [0.0, 100.0, 200.0, 300.0]);
        let answered: Vec<u64> = buckets.iter().map(|b| b.answered).collect();
        assert_eq!(answered, [1, 1, 0, 0]);
        assert_eq!(
            (buckets[1].failed.refused, buckets[1].failed.status_5xx),
            (1, 1)
        );
        assert_eq!(buckets[3].in_flight_at_end, 1);
        let in_flight: Vec<u64> = buckets.iter().map(|b| b.in_flight).collect();
        assert_eq!(in_flight, [4, 1, 1, 0]);
        // Bucket 1: latencies 130 (answered) and 139 (a 5xx, a whole response).
        assert_eq!(buckets[1].latency_p50_ms, Some(130.0));
        assert_eq!(buckets[1].latency_p99_ms, Some(139.0));
        assert_eq!(buckets[2].latency_p50_ms, None);
    }

    /// While the load runs: the totals so far, and the in-flight count carried to now.
    #[test]
    fn so_far_counts_what_ended_and_carries_what_is_out() {
        let mut timeline = Timeline::default();
        timeline.sent(10.0);
        timeline.sent(20.0);
        timeline.ended(80.0, Outcome::Answered, Some(70.0));
        timeline.sent(120.0);
        timeline.ended(130.0, Outcome::Timeout, None);
        let header = LoadSection {
            url: "http://127.0.0.1:1/".into(),
            ..LoadSection::default()
        };
        let section = timeline.so_far(header, 450.0);
        assert_eq!(section.url, "http://127.0.0.1:1/");
        assert_eq!((section.sent, section.answered), (3, 1));
        assert_eq!(section.failed.timeout, 1);
        let in_flight: Vec<u64> = section.timeline.iter().map(|b| b.in_flight).collect();
        assert_eq!(in_flight, [1, 1, 1, 1, 1]);
        assert!(section.requests.is_empty());
    }

    /// The buckets add up to the totals `tally` counts from the same rows.
    #[test]
    fn the_buckets_add_up_to_the_tallys_totals() {
        let outcomes = [
            Outcome::Answered,
            Outcome::Reset,
            Outcome::Answered,
            Outcome::Status429,
            Outcome::InFlightAtEnd,
            Outcome::Timeout,
        ];
        let rows: Vec<LoadRequest> = (0..600)
            .map(|i| {
                let sent = i as f64 * 7.0;
                let outcome = outcomes[i % outcomes.len()];
                row(sent, Some(sent + (i % 13) as f64 * 40.0), outcome)
            })
            .collect();
        let buckets = Timeline::of(&rows);
        let mut section = LoadSection {
            requests: rows,
            ..LoadSection::default()
        };
        super::super::load::tally(&mut section, None, false);
        let sum = |f: fn(&LoadBucket) -> u64| buckets.iter().map(f).sum::<u64>();
        assert_eq!(sum(|b| b.answered), section.answered);
        assert_eq!(sum(|b| b.failed.total()), section.failed.total());
        assert_eq!(sum(|b| b.in_flight_at_end), section.in_flight_at_end);
        assert_eq!(
            sum(|b| b.answered + b.failed.total() + b.in_flight_at_end),
            section.sent
        );
        assert_eq!(buckets.last().map(|b| b.in_flight), Some(0));
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&sorted, 0.5), Some(50.0));
        assert_eq!(nearest_rank(&sorted, 0.99), Some(99.0));
        assert_eq!(nearest_rank(&[7.0], 0.99), Some(7.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }
}
