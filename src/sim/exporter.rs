//! The exporter and the embedded collector in virtual time: each attempt's duration
//! (the backend's latency and jitter plus the measured per-batch cost), the backend's
//! answer (error rate and status with Retry-After, outage, black hole, ingestion limit)
//! and each profile's retry schedule from `telemetry::rules::retry` (and `rules::js`).
//! Python and rust have one export in flight at a time; js may have many (a `forceFlush`
//! sends every batch at once), so exports are kept by id, each with its own events.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

use super::{Event, Sim};
use crate::config::IngestBucket;
use crate::config::draws::{Sequence, Stream};
use crate::telemetry::rules::Profile;
use crate::telemetry::rules::js::{JsRetry, refuses_export};
use crate::telemetry::rules::retry::{
    Answer, Next, RUST_MAX_JITTER_MS, RustRetry, python_backoff, python_backoff_factor, python_next,
};

/// What the backend will do with the attempt in flight.
#[derive(Clone, Copy, Debug)]
enum Pending {
    /// Connection refused (outage).
    Refused,
    /// No answer before the attempt's timeout (black hole, or slower than the timeout).
    TimedOut,
    /// Answered when the event fires; the decision is taken then, as the collector
    /// decides after its latency (`collector/routes.rs`).
    Served,
    /// Waiting before the next try.
    Backoff,
    /// Refused by the js exporter's concurrency limit, failed at once with nothing sent.
    OverLimit,
}

#[derive(Clone, Copy, Debug)]
struct Export {
    spans: u64,
    /// HTTP attempts made so far.
    attempts: u32,
    started: Duration,
    retry_num: i32,
    connection_retried: bool,
    rust: RustRetry,
    js: JsRetry,
    /// Js: the next attempt's own timeout, what was left of the deadline before its wait.
    attempt_timeout: Duration,
    pending: Pending,
    /// Only the event scheduled last for this export counts.
    epoch: u64,
}

#[derive(Debug)]
pub(super) struct Exporter {
    epoch: u64,
    next_id: u64,
    /// The exports in flight, by id.
    exports: BTreeMap<u64, Export>,
    bucket: IngestBucket,
    /// The collector's jitter and injected-error draws (`collector::faults::Draws`) and
    /// the python exporter's backoff draws (`telemetry/wire.rs`), the same sequences.
    jitter: Sequence,
    error: Sequence,
    backoff: Sequence,
    /// The exporter was shut down: a retry wait ends the export (python).
    pub(super) shutting_down: bool,
}

impl Exporter {
    pub(super) fn new(seed: u64) -> Exporter {
        Exporter {
            epoch: 0,
            next_id: 0,
            exports: BTreeMap::new(),
            bucket: IngestBucket::default(),
            jitter: Sequence::new(seed, Stream::Jitter),
            error: Sequence::new(seed, Stream::InjectedError),
            backoff: Sequence::new(seed, Stream::PythonBackoff),
            shutting_down: false,
        }
    }
}

impl Exporter {
    /// Exports in flight now.
    pub(super) fn in_flight(&self) -> usize {
        self.exports.len()
    }
}

impl Sim<'_> {
    /// Sends a batch; returns its export's id, which `export_done` is called with.
    pub(super) fn export_start(&mut self, spans: u64) -> u64 {
        let id = self.exporter.next_id;
        self.exporter.next_id += 1;
        let over_limit =
            self.processor.profile() == Profile::Js && refuses_export(self.exporter.in_flight());
        self.exporter.exports.insert(
            id,
            Export {
                spans,
                attempts: 0,
                started: self.now,
                retry_num: 0,
                connection_retried: false,
                rust: RustRetry::default(),
                js: JsRetry::default(),
                attempt_timeout: self.timeout(),
                pending: Pending::Backoff,
                epoch: 0,
            },
        );
        if over_limit {
            // Answered after the caller has booked the export, as the callback upstream.
            self.schedule(id, Pending::OverLimit, Duration::ZERO);
        } else {
            self.attempt(id);
        }
        id
    }

    /// The export's next event, `takes` from now; earlier ones for it go stale.
    fn schedule(&mut self, id: u64, pending: Pending, takes: Duration) {
        self.exporter.epoch += 1;
        let epoch = self.exporter.epoch;
        if let Some(export) = self.exporter.exports.get_mut(&id) {
            export.pending = pending;
            export.epoch = epoch;
        }
        self.at(self.now + takes, Event::Exporter { export: id, epoch });
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.exporter.timeout_ms)
    }

    /// One HTTP attempt: python's timeout is what is left of its deadline, js's what was
    /// left before its wait, rust's the exporter timeout per attempt (`telemetry/wire.rs`).
    fn attempt(&mut self, id: u64) {
        let Some(export) = self.exporter.exports.get_mut(&id) else {
            return;
        };
        export.attempts += 1;
        if export.attempts > 1 {
            self.out.http_retries += 1;
        }
        let export = *export;
        self.out.http_attempts += 1;
        self.out.http_bytes += (export.spans as f64 * self.costs.bytes_per_span) as u64;
        let timeout = match self.processor.profile() {
            Profile::Python => {
                let deadline = export.started + self.timeout();
                deadline
                    .saturating_sub(self.now)
                    .max(Duration::from_millis(1))
            }
            Profile::Js => export.attempt_timeout,
            Profile::Rust => self.timeout(),
        };
        let faults = &self.settings.collector;
        let (pending, takes) = if faults.outage {
            (Pending::Refused, Duration::ZERO)
        } else if faults.black_hole {
            (Pending::TimedOut, timeout)
        } else {
            // The collector draws a jitter for every request it answers (`collector/faults.rs`,
            // `Draws`): the same draw of the same sequence.
            let jitter = faults.jitter_for(self.exporter.jitter.next());
            let cost = self.costs.per_batch_ms + self.costs.per_span_ms * export.spans as f64;
            let takes = Duration::from_millis(faults.latency_ms + jitter)
                + Duration::from_secs_f64(cost.max(0.0) / 1000.0);
            match takes > timeout {
                true => (Pending::TimedOut, timeout),
                false => (Pending::Served, takes),
            }
        };
        self.schedule(id, pending, takes);
    }

    /// `Store::decide`: an injected error, else the ingestion limit, else accepted; the
    /// error draw is the collector's next one.
    fn decide(&mut self, spans: u64) -> Answer {
        let faults = &self.settings.collector;
        if faults.injects_error(self.exporter.error.next()) {
            let retry_after = match faults.error_status {
                429 | 503 => faults.retry_after_s,
                _ => None,
            };
            return Answer::Status(faults.error_status, retry_after);
        }
        let collector_full = faults
            .ingest_limit_spans_per_s
            .is_some_and(|limit| !self.exporter.bucket.try_take(Some(limit), spans, self.now));
        // The fleet's backend counts what the replica's own collector let through, and
        // answers as the collector does over its quota.
        let backend_full = !collector_full
            && self.backend.as_ref().is_some_and(|backend| {
                let b = &mut *backend.borrow_mut();
                !b.bucket.try_take(Some(b.limit), spans, self.now)
            });
        if collector_full || backend_full {
            self.out.http_throttled += 1;
            return Answer::Status(429, Some(1));
        }
        Answer::Accepted
    }

    pub(super) fn exporter_event(&mut self, id: u64, epoch: u64) {
        let Some(&export) = self.exporter.exports.get(&id) else {
            return;
        };
        if epoch != export.epoch || self.life.killed {
            return;
        }
        let answer = match export.pending {
            Pending::Backoff => return self.attempt(id),
            Pending::OverLimit => return self.export_finished(id, false),
            Pending::Refused => Answer::Connection,
            Pending::TimedOut => Answer::Timeout,
            Pending::Served => self.decide(export.spans),
        };
        if answer == Answer::Accepted {
            self.spans.received += export.spans;
            return self.export_finished(id, true);
        }
        let python = self.processor.profile() == Profile::Python;
        if python && answer == Answer::Connection && !export.connection_retried {
            // l. 156-172: a ConnectionError is retried once at once.
            if let Some(export) = self.exporter.exports.get_mut(&id) {
                export.connection_retried = true;
            }
            return self.attempt(id);
        }
        let next = self.retry_decision(id, answer);
        match next {
            Next::GiveUp => self.export_finished(id, false),
            Next::RetryAfter(wait) => {
                if let Some(export) = self.exporter.exports.get_mut(&id) {
                    export.retry_num += 1;
                    export.connection_retried = false;
                }
                self.schedule(id, Pending::Backoff, wait);
            }
        }
    }

    /// What the profile's exporter does after a failed attempt of export `id`.
    fn retry_decision(&mut self, id: u64, answer: Answer) -> Next {
        let timeout = self.timeout();
        let now = self.now;
        let Some(export) = self.exporter.exports.get_mut(&id) else {
            return Next::GiveUp;
        };
        match self.processor.profile() {
            Profile::Python => {
                // The n-th failed try's draw, as the threaded exporter's (`telemetry/wire.rs`).
                let u = self.exporter.backoff.next();
                let backoff = python_backoff(export.retry_num, python_backoff_factor(u));
                let left = (export.started + timeout).saturating_sub(now);
                python_next(
                    export.retry_num,
                    answer,
                    backoff,
                    left,
                    self.exporter.shutting_down,
                )
            }
            Profile::Js => {
                // One draw per failed attempt, as the threaded exporter's.
                let u = self.exporter.backoff.next();
                let left = (export.started + timeout).saturating_sub(now);
                export.attempt_timeout = left.max(Duration::from_millis(1));
                export.js.after_failure(answer, left, u)
            }
            Profile::Rust => {
                let jitter = Duration::from_millis(self.rng.random_range(0..=RUST_MAX_JITTER_MS));
                let elapsed = now - export.started;
                export.rust.after_failure(answer, elapsed, timeout, jitter)
            }
        }
    }

    fn export_finished(&mut self, id: u64, ok: bool) {
        let Some(export) = self.exporter.exports.remove(&id) else {
            return;
        };
        if ok {
            self.spans.exported += export.spans;
        } else {
            self.spans.export_failed += export.spans;
        }
        self.export_done(id, export.spans, ok);
    }

    /// SIGKILL: the exports in flight never finish.
    pub(super) fn export_cut_off(&mut self) {
        self.exporter.exports.clear();
        self.exporter.epoch += 1;
    }
}
