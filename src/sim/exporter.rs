//! The exporter and the embedded collector in virtual time: each attempt's duration
//! (the backend's latency and jitter plus the measured per-batch cost), the backend's
//! answer (error rate and status with Retry-After, outage, black hole, ingestion limit)
//! and each profile's retry schedule from `telemetry::rules::retry`.

use std::time::Duration;

use rand::Rng;

use super::{Event, Sim};
use crate::config::IngestBucket;
use crate::config::draws::{Sequence, Stream};
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
}

#[derive(Clone, Copy, Debug)]
struct Export {
    spans: u64,
    started: Duration,
    retry_num: i32,
    connection_retried: bool,
    rust: RustRetry,
    pending: Pending,
}

#[derive(Debug)]
pub(super) struct Exporter {
    epoch: u64,
    current: Option<Export>,
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
            current: None,
            bucket: IngestBucket::default(),
            jitter: Sequence::new(seed, Stream::Jitter),
            error: Sequence::new(seed, Stream::InjectedError),
            backoff: Sequence::new(seed, Stream::PythonBackoff),
            shutting_down: false,
        }
    }
}

impl Sim<'_> {
    pub(super) fn export_start(&mut self, spans: u64) {
        self.exporter.current = Some(Export {
            spans,
            started: self.now,
            retry_num: 0,
            connection_retried: false,
            rust: RustRetry::default(),
            pending: Pending::Backoff,
        });
        self.attempt();
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.settings.exporter.timeout_ms)
    }

    /// One HTTP attempt: python's timeout is what is left of its deadline, rust's the
    /// exporter timeout per attempt (`telemetry/wire.rs`).
    fn attempt(&mut self) {
        let Some(mut export) = self.exporter.current else {
            return;
        };
        self.out.http_attempts += 1;
        self.out.http_bytes += (export.spans as f64 * self.costs.bytes_per_span) as u64;
        let timeout = if self.processor.is_python() {
            let deadline = export.started + self.timeout();
            deadline
                .saturating_sub(self.now)
                .max(Duration::from_millis(1))
        } else {
            self.timeout()
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
        export.pending = pending;
        self.exporter.current = Some(export);
        self.exporter.epoch += 1;
        let epoch = self.exporter.epoch;
        self.at(self.now + takes, Event::Exporter { epoch });
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
        if let Some(limit) = faults.ingest_limit_spans_per_s
            && !self.exporter.bucket.try_take(Some(limit), spans, self.now)
        {
            return Answer::Status(429, Some(1));
        }
        Answer::Accepted
    }

    pub(super) fn exporter_event(&mut self, epoch: u64) {
        let Some(mut export) = self.exporter.current else {
            return;
        };
        if epoch != self.exporter.epoch || self.life.killed {
            return;
        }
        let answer = match export.pending {
            Pending::Backoff => return self.attempt(),
            Pending::Refused => Answer::Connection,
            Pending::TimedOut => Answer::Timeout,
            Pending::Served => self.decide(export.spans),
        };
        if answer == Answer::Accepted {
            self.spans.received += export.spans;
            return self.export_finished(true);
        }
        let next = if self.processor.is_python() {
            if answer == Answer::Connection && !export.connection_retried {
                // l. 156-172: a ConnectionError is retried once at once.
                export.connection_retried = true;
                self.exporter.current = Some(export);
                return self.attempt();
            }
            // The n-th failed try's draw, as the threaded exporter's (`telemetry/wire.rs`).
            let u = self.exporter.backoff.next();
            let backoff = python_backoff(export.retry_num, python_backoff_factor(u));
            let left = (export.started + self.timeout()).saturating_sub(self.now);
            python_next(
                export.retry_num,
                answer,
                backoff,
                left,
                self.exporter.shutting_down,
            )
        } else {
            let jitter = Duration::from_millis(self.rng.random_range(0..=RUST_MAX_JITTER_MS));
            let elapsed = self.now - export.started;
            export
                .rust
                .after_failure(answer, elapsed, self.timeout(), jitter)
        };
        match next {
            Next::GiveUp => self.export_finished(false),
            Next::RetryAfter(wait) => {
                export.retry_num += 1;
                export.connection_retried = false;
                export.pending = Pending::Backoff;
                self.exporter.current = Some(export);
                self.exporter.epoch += 1;
                let epoch = self.exporter.epoch;
                self.at(self.now + wait, Event::Exporter { epoch });
            }
        }
    }

    fn export_finished(&mut self, ok: bool) {
        let Some(export) = self.exporter.current.take() else {
            return;
        };
        if ok {
            self.spans.exported += export.spans;
        } else {
            self.spans.export_failed += export.spans;
        }
        self.export_done(export.spans);
    }

    /// SIGKILL: the export in flight never finishes.
    pub(super) fn export_cut_off(&mut self) {
        self.exporter.current = None;
        self.exporter.epoch += 1;
    }
}
