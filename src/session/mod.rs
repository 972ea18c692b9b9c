//! A session: the layers below wired together and driven to a report. [`Session`] holds
//! one collector, one record and the current runner's pipeline; [`run`] plays a scenario
//! headless (traffic for its duration, then a clean end or the platform's shutdown) and
//! [`live`] drives one from the window, taking commands and publishing snapshots. Both
//! build the same [`Report`].

pub mod advise;
mod exit;
pub mod live;
pub mod model_times;
pub mod probe_compare;
pub mod probe_predict;
pub mod sweep;
pub mod virtual_clock;
pub mod whatif;
pub mod your_app;
pub mod your_app_compare;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use crate::collector::{Collector, CollectorConfig, CollectorError, StoredTrace};
use crate::config::Settings;
use crate::lifecycle;
use crate::record::report::Report;
use crate::record::{ExitProgress, Record, SAMPLE_EVERY};
use crate::telemetry::{Pipeline, PipelineError};
use crate::workload::Traffic;
use crate::workload::model::ModelError;

/// The runner id of the first (and, without a restart, only) runner of a run.
pub const FIRST_RUNNER: u64 = 1;

/// Why a session could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The embedded collector could not listen or start its threads.
    #[error("cannot start the embedded collector: {0}")]
    Collector(#[from] CollectorError),
    /// The runner's telemetry could not be built.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// The model workload could not load its weights or start its warm-up.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A new runner needs an endpoint, and this session has no embedded collector and
    /// its settings name none.
    #[error("no endpoint: the session has no embedded collector and exporter.endpoint is unset")]
    NoEndpoint,
    /// The real run that measures the virtual clock's costs gave nothing to fit.
    #[error("cannot calibrate the virtual clock: {0}")]
    Calibration(String),
}

/// A collector, a pipeline and a record wired together; the pieces a run, a test or the
/// UI drives.
pub struct Session {
    pub record: Arc<Record>,
    pub collector: Option<Arc<Collector>>,
    pub pipeline: Arc<Pipeline>,
    sampling: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

impl Session {
    /// Starts the embedded collector (unless the settings name another endpoint) and
    /// the pipeline, and begins sampling the record's time series.
    pub fn start(settings: &Settings) -> Result<Session, SessionError> {
        let record = Arc::new(Record::new());
        let collector = match &settings.exporter.endpoint {
            Some(_) => None,
            None => Some(Arc::new(Collector::start(CollectorConfig::for_settings(
                settings,
            ))?)),
        };
        let endpoint = endpoint(settings, collector.as_deref())?;
        let pipeline = Arc::new(Pipeline::start(
            settings,
            endpoint,
            record.clone(),
            FIRST_RUNNER,
        )?);
        let sampling = Arc::new(AtomicBool::new(true));
        let sampler = {
            let record = record.clone();
            let sampling = sampling.clone();
            let collector = collector.clone();
            std::thread::Builder::new()
                .name("gracetrace-sampler".into())
                .spawn(move || {
                    while sampling.load(Relaxed) {
                        let received = collector.as_ref().map_or(0, |c| c.stats().spans_received);
                        record.sample(received);
                        std::thread::sleep(SAMPLE_EVERY);
                    }
                })
                .ok()
        };
        Ok(Session {
            record,
            collector,
            pipeline,
            sampling,
            sampler,
        })
    }

    /// Replaces a runner that has exited or been killed with a fresh one (a new runner id,
    /// so the collector, which ignores a killed runner's late requests, accepts it) that
    /// shares this session's record and collector: one time axis, one set of counters.
    /// The record marks the boundary. The old pipeline has already shut down or been
    /// killed; its abandoned threads drop their handles when they notice.
    pub fn restart_runner(
        &mut self,
        settings: &Settings,
        runner_id: u64,
    ) -> Result<(), SessionError> {
        let endpoint = endpoint(settings, self.collector.as_deref())?;
        let pipeline = Pipeline::start(settings, endpoint, self.record.clone(), runner_id)?;
        self.record.mark(format!("runner {runner_id} started"));
        self.pipeline = Arc::new(pipeline);
        Ok(())
    }

    /// Stops sampling, takes a last sample and builds the report.
    pub fn finish(mut self, settings: &Settings) -> Report {
        self.sampling.store(false, Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        let stats = self.collector.as_ref().map(|c| c.stats());
        self.record
            .sample(stats.as_ref().map_or(0, |s| s.spans_received));
        let report = Report::build(&self.record, settings, stats);
        // The sampler thread held the only other handle, and it has been joined.
        if let Some(collector) = self.collector.take().and_then(Arc::into_inner) {
            collector.shutdown();
        }
        report
    }
}

/// The newest trace the collector keeps whose root has arrived: the first that draws a
/// whole waterfall.
pub fn newest_whole_trace(collector: &Collector) -> Option<StoredTrace> {
    collector.recent_traces().into_iter().find(|t| {
        // Under `probe --url`'s load the app's top span is the child of the span id the
        // probe sent in its `traceparent`, which never arrives: that span is the root.
        let probe_parent = u128::from_str_radix(&t.trace_id, 16)
            .ok()
            .map(|id| format!("{:016x}", crate::record::wire::probe_parent_span_id(id)));
        t.spans
            .iter()
            .any(|s| s.parent_span_id.is_none() || s.parent_span_id == probe_parent)
    })
}

/// Where a runner exports: the settings' endpoint, else the embedded collector.
fn endpoint(settings: &Settings, collector: Option<&Collector>) -> Result<String, SessionError> {
    match (&settings.exporter.endpoint, collector) {
        (Some(endpoint), _) => Ok(endpoint.clone()),
        (None, Some(collector)) => Ok(collector.traces_endpoint()),
        (None, None) => Err(SessionError::NoEndpoint),
    }
}

/// Runs a scenario to the end and reports: with `shutdown.at_s`, the platform's
/// SIGTERM -> SIGKILL sequence at that moment; without it, the end of traffic and the
/// provider's shutdown within its SDK's own timeout (see `exit.rs`).
pub fn run(settings: &Settings) -> Result<Report, SessionError> {
    run_with_progress(settings, &|_| {})
}

/// [`run`], telling `progress` every second what the end of a run without a shutdown is
/// still waiting for (the terminal's progress line).
pub fn run_with_progress(
    settings: &Settings,
    progress: &dyn Fn(&ExitProgress),
) -> Result<Report, SessionError> {
    if settings.workload.kind == crate::config::WorkloadKind::Model {
        // Loads the weights (an error naming the file if they cannot be) and starts the
        // warm-up in the background before anything else, so it overlaps the set-up.
        crate::workload::model_service(&settings.workload)?;
    }
    let session = Session::start(settings)?;
    let traffic = Traffic::start(&settings.workload, session.pipeline.clone());
    let (shutdown, exit) = match settings.shutdown.at_s {
        Some(at_s) => {
            std::thread::sleep(Duration::from_secs_f64(at_s));
            let collector = session.collector.as_deref();
            let shutdown =
                lifecycle::shutdown(&session.pipeline, traffic, collector, &settings.shutdown);
            (Some(shutdown), None)
        }
        // The collector counts a request before answering it, so once the pipeline has
        // shut down every acknowledged span is already in its stats.
        None => (
            None,
            Some(exit::end_of_traffic(&session, traffic, settings, progress)),
        ),
    };
    if let Some(collector) = &session.collector {
        // Batches accepted at the end get a bounded chance to reach the forward backend,
        // so the report says what became of them (as `collect` does at its exit).
        collector.wait_forwarded(crate::collector::FORWARD_DRAIN);
    }
    let mut report = session.finish(settings);
    report.shutdown = shutdown;
    report.exit = exit;
    Ok(report)
}
