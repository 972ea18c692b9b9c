//! A background job on a thread of its own, as the engine runs the what-if's sweep and
//! advisor: the virtual clock calibrated once and shared by every job ([`calibrated`]),
//! the model's times measured once too when a job's settings serve with the model,
//! progress counters the snapshot reads, the result or a typed error ([`JobError`]), and
//! what the window sees of it ([`JobView`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};

use super::run::WhatIfError;
use crate::config::WorkloadSettings;
use crate::session::SessionError;
use crate::session::model_times;
use crate::session::virtual_clock::calibrate;
use crate::sim::Calibration;

/// Why a job has no result; the window shows it (through Display) under the job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The real run that calibrates the virtual clock failed, so no job can run; each
    /// [`SessionError`] says what of that run failed.
    #[error(transparent)]
    Calibration(SessionError),
    /// The sweep or the advisor failed.
    #[error(transparent)]
    WhatIf(#[from] WhatIfError),
    /// The job's thread could not be started.
    #[error("cannot start the {thread} thread: {source}")]
    Spawn {
        thread: String,
        source: std::io::Error,
    },
    /// The job's thread ended without sending a result: it panicked.
    #[error("the {thread} job ended without a result")]
    NoResult { thread: String },
}

/// A job's error as the snapshot carries it: shared, as the snapshot is cloned for every
/// frame, and still typed ([`JobFailure::error`]).
#[derive(Clone, Debug, thiserror::Error)]
#[error(transparent)]
pub struct JobFailure(Arc<JobError>);

impl JobFailure {
    /// What failed.
    pub fn error(&self) -> &JobError {
        &self.0
    }
}

impl From<JobError> for JobFailure {
    fn from(error: JobError) -> JobFailure {
        JobFailure(Arc::new(error))
    }
}

/// Two failures are equal when they are the same one (copies of one job's error): the
/// errors inside (an `io::Error`, ...) cannot be compared.
impl PartialEq for JobFailure {
    fn eq(&self, other: &JobFailure) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Where a background job is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// The virtual clock's real calibration run is still going.
    pub calibrating: bool,
    pub done: usize,
    pub total: usize,
}

/// A job as the window sees it: running or not, its last result, its last error.
#[derive(Clone, Debug)]
pub struct JobView<T> {
    pub running: Option<Progress>,
    pub last: Option<Arc<T>>,
    pub error: Option<JobFailure>,
    /// The settings in force differ from those `last` ran on.
    pub stale: bool,
}

impl<T> Default for JobView<T> {
    fn default() -> Self {
        JobView {
            running: None,
            last: None,
            error: None,
            stale: false,
        }
    }
}

/// A job on its own thread: its name, its progress counters and where its result arrives.
struct Running<T> {
    thread: String,
    calibrating: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    result: Receiver<Result<T, JobError>>,
}

/// One kind of job: the one running, the last result and error.
pub(super) struct Slot<T> {
    running: Option<Running<T>>,
    last: Option<Arc<T>>,
    error: Option<JobFailure>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            running: None,
            last: None,
            error: None,
        }
    }
}

impl<T: Send + 'static> Slot<T> {
    /// Starts `job` on a thread named `name` unless one runs; it gets the calibrated costs
    /// (measured on first use, shared by every job; with the model's times for `model`,
    /// the workload of settings that serve with the model) and a progress callback.
    pub(super) fn start(
        &mut self,
        costs: &Arc<Mutex<Option<Calibration>>>,
        model: Option<WorkloadSettings>,
        name: &str,
        job: impl FnOnce(Calibration, &(dyn Fn(usize, usize) + Sync)) -> Result<T, WhatIfError>
        + Send
        + 'static,
    ) {
        if self.running.is_some() {
            return;
        }
        let (send, result) = channel();
        let calibrating = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let running = Running {
            thread: name.into(),
            calibrating: calibrating.clone(),
            done: done.clone(),
            total: total.clone(),
            result,
        };
        let costs = costs.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let measured = calibrated(&costs, model.as_ref());
                calibrating.store(false, Relaxed);
                let outcome = measured.and_then(|c| {
                    let progress = |d, t| {
                        done.store(d, Relaxed);
                        total.store(t, Relaxed);
                    };
                    job(c, &progress).map_err(JobError::WhatIf)
                });
                let _ = send.send(outcome);
            });
        match spawned {
            Ok(_) => self.running = Some(running),
            Err(source) => {
                let thread = name.into();
                self.error = Some(JobError::Spawn { thread, source }.into());
            }
        }
    }

    /// Takes a finished job's result; true when one arrived.
    pub(super) fn poll(&mut self) -> bool {
        let Some(running) = &self.running else {
            return false;
        };
        let outcome = match running.result.try_recv() {
            Err(TryRecvError::Empty) => return false,
            Ok(outcome) => outcome,
            Err(TryRecvError::Disconnected) => Err(JobError::NoResult {
                thread: running.thread.clone(),
            }),
        };
        self.running = None;
        match outcome {
            Ok(result) => {
                self.last = Some(Arc::new(result));
                self.error = None;
            }
            Err(error) => self.error = Some(error.into()),
        }
        true
    }

    /// Whether a job runs now.
    pub(super) fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The last result, kept while the next job runs.
    pub(super) fn last(&self) -> Option<&T> {
        self.last.as_deref()
    }

    pub(super) fn view(&self, stale: bool) -> JobView<T> {
        JobView {
            running: self.running.as_ref().map(|r| Progress {
                calibrating: r.calibrating.load(Relaxed),
                done: r.done.load(Relaxed),
                total: r.total.load(Relaxed),
            }),
            last: self.last.clone(),
            error: self.error.clone(),
            stale,
        }
    }
}

/// The costs, calibrated by the first job that needs them, and the model's times by the
/// first job for `model`'s device; later jobs wait for that one.
fn calibrated(
    costs: &Mutex<Option<Calibration>>,
    model: Option<&WorkloadSettings>,
) -> Result<Calibration, JobError> {
    let mut costs = costs.lock().unwrap_or_else(|e| e.into_inner());
    let mut measured = match &*costs {
        Some(c) => c.clone(),
        None => calibrate().map_err(JobError::Calibration)?,
    };
    if let Some(workload) = model {
        let measured_for = measured.model.as_ref().map(|t| t.device_choice);
        if measured_for != Some(workload.device) {
            let times = model_times::measure(workload).map_err(JobError::Calibration)?;
            measured.model = Some(times);
        }
    }
    *costs = Some(measured.clone());
    Ok(measured)
}
