//! The live session behind the window: owns the session (collector, pipeline, record) and the
//! traffic on its own thread, takes commands from the UI over a channel and publishes a
//! [`Snapshot`] about ten times a second. The UI thread never waits on any of it: sending
//! a command never blocks, and reading the snapshot only clones an `Arc` under a lock
//! that is held for the length of a pointer swap.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::your_app::{AppError, AppRun, AppStart, AppView};
use super::your_app_compare::{CompareJob, CompareView};
use super::{FIRST_RUNNER, Session, SessionError, newest_whole_trace, whatif};
use crate::collector::{CollectorError, StoredTrace};
use crate::config::scenario_file::{self, ScenarioFileError};
use crate::config::{ConfigError, Settings, Source};
use crate::lifecycle;
use crate::record::report::Report;
use crate::record::{LastImage, ShutdownReport};
use crate::telemetry::PipelineError;
use crate::workload::Traffic;

/// How often the engine rebuilds the snapshot (the record samples at the same rate).
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// The GUI's traffic runs until the user stops it; the knob's maximum is an hour, after
/// which the engine simply starts the next hour.
const GUI_TRAFFIC_S: f64 = 3600.0;
/// How long dropping the engine waits for the user's app to be gone.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// What the UI can ask for.
#[derive(Debug)]
pub enum Command {
    /// New settings; the engine applies what changed, live.
    Apply(Box<Settings>),
    /// The platform's SIGTERM now (then SIGKILL after the grace period): to the user's app
    /// while it serves, else to the simulated runner.
    Shutdown,
    /// Who serves: the user's app (true: the simulated traffic pauses) or the simulated
    /// runner (false: its traffic resumes).
    ServeApp(bool),
    /// Start the user's app with this command line (split without a shell) under the
    /// probe, with the settings in force, and the traffic to its URL if it has one; see
    /// [`AppRun`].
    StartApp(AppStart),
    /// Run the user's app once per value of `KEY=A,B,...` with the settings in force, as
    /// `probe --compare` does; see [`CompareJob`].
    Compare(AppStart, String),
    /// After a shutdown: a fresh runner sharing the record and the collector.
    NewRunner,
    /// Load a scenario file (as `gracetrace run --scenario` would) and apply it.
    Open(PathBuf),
    /// Write these settings as a scenario file.
    Save(PathBuf, Box<Settings>),
    /// Sweep one knob over a range in virtual time, on the settings in force, in the
    /// background; again whenever they change (see [`whatif::Worker`]).
    WhatIf(whatif::Request),
    /// Run the advisor on the settings in force, in the background, pricing its options
    /// at this price per million spans.
    Advise(Option<f64>),
}

/// Why the engine refused a command; shown in the window's status line.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The settings break a rule (a range, batch <= queue).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The collector refused the faults.
    #[error(transparent)]
    Collector(#[from] CollectorError),
    /// The runner's telemetry could not be rebuilt with the new settings.
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    /// A new runner could not start.
    #[error(transparent)]
    Session(#[from] SessionError),
    /// A scenario file could not be read or written.
    #[error(transparent)]
    ScenarioFile(#[from] ScenarioFileError),
    /// Shutdown was asked of a runner that is not running.
    #[error("the runner is not running")]
    NotRunning,
    /// A new runner was asked for while the current one still runs.
    #[error("shut the current runner down first")]
    StillRunning,
    /// The platform thread that plays the shutdown could not be started.
    #[error("cannot start the shutdown: {0}")]
    Thread(#[source] std::io::Error),
    /// The user's app could not be started or signalled.
    #[error(transparent)]
    App(#[from] AppError),
}

/// Where the current runner is in its life.
#[derive(Clone, Debug, PartialEq)]
pub enum RunnerState {
    /// The engine is still starting the session.
    Starting,
    Running,
    /// SIGTERM was sent at `sigterm_ms`; the grace period is running.
    ShuttingDown {
        sigterm_ms: f64,
    },
    /// The runner exited or was killed; the shutdown report is in the snapshot.
    Ended,
    /// The session could not start (e.g. no port for the collector).
    Failed(String),
}

/// Everything the window draws, built by the engine from the record and the collector.
/// The report is the very one `gracetrace run --json` writes, so the window and the
/// JSON can never disagree.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub report: Report,
    pub phase: RunnerState,
    /// The last shutdown's timeline (kept after a new runner starts, as history).
    pub last_shutdown: Option<ShutdownReport>,
    pub runner_id: u64,
    pub collector_addr: Option<String>,
    /// The most recent sampled trace the collector stored, for the waterfall.
    pub recent_trace: Option<StoredTrace>,
    /// Why the last command was refused, for the status line.
    pub last_error: Option<String>,
    /// What the last Open or Save did, in words, and how many scenarios were opened so
    /// far (the window adopts the report's settings when this number moves).
    pub file_message: Option<String>,
    pub opened: u64,
    /// How many changes of settings the engine refused so far; the window goes back to
    /// the settings in force (`report.settings`) when this number moves.
    pub rejected: u64,
    /// The picture the last model request produced, with its trace id.
    pub last_image: Option<LastImage>,
    /// The what-if sweep and the advisor: progress and last results.
    pub what_if: whatif::View,
    /// Whether the user's app serves (the simulated traffic is paused meanwhile).
    pub served_by_app: bool,
    /// The user's app, from the last Start on (kept after it ends, as history).
    pub app: Option<Arc<AppView>>,
    /// The last comparison of the user's app, its rows as its runs end.
    pub compare: Option<Arc<CompareView>>,
}

impl Snapshot {
    /// A snapshot before the first report: empty counts, the given settings.
    pub fn starting(settings: &Settings) -> Snapshot {
        let record = crate::record::Record::new();
        Snapshot {
            report: Report::build(&record, settings, None),
            phase: RunnerState::Starting,
            last_shutdown: None,
            runner_id: FIRST_RUNNER,
            collector_addr: None,
            recent_trace: None,
            last_error: None,
            file_message: None,
            opened: 0,
            rejected: 0,
            last_image: None,
            what_if: whatif::View::default(),
            served_by_app: false,
            app: None,
            compare: None,
        }
    }
}

/// The settings a window starts with: `scenario` when given, else the settings
/// remembered at the last exit, else defaults and the environment (the same layers as
/// `gracetrace run`).
pub fn initial_settings(scenario: Option<&Path>) -> Result<Settings, ConfigError> {
    match scenario {
        Some(path) => Settings::load_from_process(Some(path), &[]),
        None => match scenario_file::load_last() {
            Some(settings) => Ok(settings),
            None => Settings::load_from_process(None, &[]),
        },
    }
}

/// Remembers the window's settings for its next launch.
pub fn remember(settings: &Settings) -> Result<(), ScenarioFileError> {
    scenario_file::save_last(settings)
}

/// The UI's handle on the engine thread.
pub struct Engine {
    commands: Sender<Command>,
    latest: Arc<Mutex<Arc<Snapshot>>>,
    /// Closed by the engine thread once the user's app is gone (or was never started).
    app_closed: Receiver<()>,
    _thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts the session on a background thread. `repaint` is called after each new
    /// snapshot (the window passes `ctx.request_repaint`), so the UI redraws only when
    /// there is something new.
    pub fn start(settings: Settings, repaint: Box<dyn Fn() + Send>) -> Engine {
        let latest = Arc::new(Mutex::new(Arc::new(Snapshot::starting(&settings))));
        let (commands, inbox) = channel();
        let (app_closing, app_closed) = channel();
        let thread = {
            let latest = latest.clone();
            std::thread::Builder::new()
                .name("gracetrace-ui-engine".into())
                .spawn(move || drive(settings, &inbox, &latest, &*repaint, app_closing))
                .ok()
        };
        Engine {
            commands,
            latest,
            app_closed,
            _thread: thread,
        }
    }

    /// Queues a command; never blocks. A dead engine thread is shown by the snapshot's
    /// phase, so a failed send needs no handling here.
    pub fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// The newest snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.latest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for Engine {
    /// The window is closing: the engine thread ends what it started, and the user's app,
    /// a process of its own, must be gone before this process exits, or it would be left
    /// behind. Waits for that (bounded), not for the rest of the engine's closing.
    fn drop(&mut self) {
        // Closing the command channel is what tells the engine thread to stop.
        self.commands = channel().0;
        let _ = self.app_closed.recv_timeout(CLOSE_WAIT);
    }
}

/// The engine thread's state.
struct Driver {
    session: Session,
    applied: Settings,
    traffic: Option<Traffic>,
    traffic_started: Instant,
    phase: RunnerState,
    shutdown_done: Option<Receiver<ShutdownReport>>,
    last_shutdown: Option<ShutdownReport>,
    runner_id: u64,
    last_error: Option<String>,
    file_message: Option<String>,
    opened: u64,
    rejected: u64,
    what_if: whatif::Worker,
    served_by_app: bool,
    app: Option<AppRun>,
    app_runs: u64,
    compare: Option<CompareJob>,
    /// Dropped once the app is gone at close (see [`Engine`]'s drop).
    app_closing: Option<Sender<()>>,
}

fn publish(latest: &Mutex<Arc<Snapshot>>, snapshot: Snapshot, repaint: &dyn Fn()) {
    *latest.lock().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
    repaint();
}

fn drive(
    settings: Settings,
    inbox: &Receiver<Command>,
    latest: &Mutex<Arc<Snapshot>>,
    repaint: &dyn Fn(),
    app_closing: Sender<()>,
) {
    let session = match Session::start(&settings) {
        Ok(session) => session,
        Err(error) => {
            let mut snapshot = Snapshot::starting(&settings);
            snapshot.phase = RunnerState::Failed(error.to_string());
            publish(latest, snapshot, repaint);
            return;
        }
    };
    let mut driver = Driver {
        traffic: Some(Traffic::start(
            &gui_workload(&settings),
            session.pipeline.clone(),
        )),
        traffic_started: Instant::now(),
        session,
        applied: settings,
        phase: RunnerState::Running,
        shutdown_done: None,
        last_shutdown: None,
        runner_id: FIRST_RUNNER,
        last_error: None,
        file_message: None,
        opened: 0,
        rejected: 0,
        what_if: whatif::Worker::default(),
        served_by_app: false,
        app: None,
        app_runs: 0,
        compare: None,
        app_closing: Some(app_closing),
    };
    let mut next_publish = Instant::now();
    loop {
        match inbox.recv_timeout(next_publish.saturating_duration_since(Instant::now())) {
            Ok(command) => driver.handle(command),
            Err(RecvTimeoutError::Timeout) => {}
            // The window is gone: stop the traffic and the runner at once (there is
            // nobody left to watch a graceful shutdown), then the sampler and collector.
            Err(RecvTimeoutError::Disconnected) => return driver.close(),
        }
        if Instant::now() >= next_publish {
            driver.tick();
            publish(latest, driver.snapshot(), repaint);
            next_publish = Instant::now() + PUBLISH_EVERY;
        }
    }
}

/// The scenario's workload, run for as long as the window is open.
fn gui_workload(settings: &Settings) -> crate::config::WorkloadSettings {
    let mut workload = settings.workload.clone();
    workload.duration_s = GUI_TRAFFIC_S;
    workload
}

impl Driver {
    fn handle(&mut self, command: Command) {
        let result = match command {
            Command::Apply(settings) => self.apply(*settings).inspect_err(|_| self.rejected += 1),
            Command::Shutdown if self.served_by_app => self.app_sigterm(),
            Command::Shutdown => self.shutdown(),
            Command::ServeApp(on) => {
                self.serve_app(on);
                Ok(())
            }
            Command::StartApp(start) => self.start_app(&start),
            Command::Compare(start, text) => self.start_compare(&start, &text),
            Command::NewRunner => self.new_runner(),
            Command::Open(path) => self.open(&path),
            Command::Save(path, settings) => self.save(&path, &settings),
            Command::WhatIf(request) => {
                self.what_if.sweep(request, &self.applied);
                Ok(())
            }
            Command::Advise(price) => {
                self.what_if.advise(&self.applied, price);
                Ok(())
            }
        };
        // The latest outcome wins: a later success clears an earlier complaint.
        self.last_error = result.err().map(|e| e.to_string());
    }

    /// Loads a scenario as `gracetrace run --scenario` does and applies it live.
    fn open(&mut self, path: &Path) -> Result<(), CommandError> {
        let settings = scenario_file::load(path)
            .inspect_err(|error| self.file_message = Some(error.to_string()))?;
        self.apply(settings)?;
        self.opened += 1;
        self.file_message = Some(format!("opened {}", path.display()));
        Ok(())
    }

    fn save(&mut self, path: &Path, settings: &Settings) -> Result<(), CommandError> {
        let outcome = scenario_file::save(path, settings);
        self.file_message = Some(match &outcome {
            Ok(()) => format!("saved {}", path.display()),
            Err(error) => error.to_string(),
        });
        Ok(outcome?)
    }

    /// Applies what changed, each part where it lives: the pipeline (sampler, batch
    /// processor, exporter), the collector's faults, the traffic.
    ///
    /// All or nothing: `applied` (what the report, and so the window, shows as in force)
    /// changes only once every part took the new settings; if the pipeline refuses them,
    /// the collector goes back to its old faults.
    fn apply(&mut self, new: Settings) -> Result<(), CommandError> {
        new.validate(Source::Live)?;
        let collector = self
            .session
            .collector
            .clone()
            .filter(|_| self.applied.collector != new.collector);
        if let Some(collector) = &collector {
            collector.set_faults(new.collector.clone())?;
        }
        if self.phase == RunnerState::Running {
            // A runner that is shutting down or gone keeps its settings; the next one
            // starts with these.
            if let Err(error) = self.session.pipeline.reconfigure(&new) {
                if let Some(collector) = &collector {
                    collector.set_faults(self.applied.collector.clone())?;
                }
                return Err(error.into());
            }
        }
        let old = std::mem::replace(&mut self.applied, new);
        if old != self.applied {
            self.what_if.settings_changed();
        }
        if self.phase == RunnerState::Running
            && !self.served_by_app
            && old.workload != self.applied.workload
        {
            self.restart_traffic();
        }
        Ok(())
    }

    /// New traffic settings: the old arrivals stop (no refusals are counted: this is
    /// not a shutdown), its accepted requests finish on their own threads, and new
    /// arrivals start at once.
    fn restart_traffic(&mut self) {
        self.retire_traffic();
        self.session.record.mark("traffic changed");
        self.start_traffic();
    }

    /// Stops the arrivals of the traffic running, if any (true then); its accepted
    /// requests finish on a thread of their own.
    fn retire_traffic(&mut self) -> bool {
        let Some(mut old) = self.traffic.take() else {
            return false;
        };
        old.detach_arrivals().stop();
        let _ = std::thread::Builder::new()
            .name("gracetrace-traffic-retire".into())
            .spawn(move || old.wait_drained());
        true
    }

    fn start_traffic(&mut self) {
        self.traffic = Some(Traffic::start(
            &gui_workload(&self.applied),
            self.session.pipeline.clone(),
        ));
        self.traffic_started = Instant::now();
    }

    /// The user's app serves (`on`) or the simulated runner does. While the app serves,
    /// the simulated arrivals stop (its accepted requests finish on their own threads, as
    /// at a change of traffic), so that the two do not share the machine unseen.
    fn serve_app(&mut self, on: bool) {
        if on == self.served_by_app {
            return;
        }
        self.served_by_app = on;
        if on {
            if self.retire_traffic() {
                self.session.record.mark("traffic paused: your app serves");
            }
        } else if self.phase == RunnerState::Running {
            self.restart_traffic();
        }
    }

    /// Starts the user's app with the settings in force. A line that cannot be started is
    /// kept as a failed run, so the window shows why next to the command field.
    fn start_app(&mut self, start: &AppStart) -> Result<(), CommandError> {
        if self.app.as_ref().is_some_and(|app| !app.is_gone()) {
            return Err(AppError::StillRunning.into());
        }
        if self.compare.as_ref().is_some_and(|job| !job.is_done()) {
            // Its runs start the same command: a second server on the same port.
            return Err(AppError::CompareRunning.into());
        }
        self.app_runs += 1;
        self.app = Some(
            AppRun::start(&self.applied, start, self.app_runs)
                .unwrap_or_else(|error| AppRun::failed(self.app_runs, &start.line, &error)),
        );
        Ok(())
    }

    /// Starts a comparison with the settings in force, unless the app or another
    /// comparison runs (the same command twice would fight over its port).
    fn start_compare(&mut self, start: &AppStart, text: &str) -> Result<(), CommandError> {
        if self.app.as_ref().is_some_and(|app| !app.is_gone()) {
            return Err(AppError::StillRunning.into());
        }
        if self.compare.as_ref().is_some_and(|job| !job.is_done()) {
            return Err(AppError::CompareRunning.into());
        }
        self.compare = Some(CompareJob::start(&self.applied, start, text)?);
        Ok(())
    }

    fn app_sigterm(&mut self) -> Result<(), CommandError> {
        let app = self.app.as_ref().ok_or(AppError::NotRunning)?;
        Ok(app.sigterm()?)
    }

    /// SIGTERM now; the lifecycle runs on its own thread because it blocks for up to
    /// the grace period.
    fn shutdown(&mut self) -> Result<(), CommandError> {
        if self.phase != RunnerState::Running {
            return Err(CommandError::NotRunning);
        }
        let Some(traffic) = self.traffic.take() else {
            return Err(CommandError::NotRunning);
        };
        let pipeline = self.session.pipeline.clone();
        let collector = self.session.collector.clone();
        let settings = self.applied.shutdown.clone();
        let (done, done_rx) = channel();
        let sigterm_ms = self.session.record.now_ms();
        std::thread::Builder::new()
            .name("gracetrace-platform".into())
            .spawn(move || {
                let report =
                    lifecycle::shutdown(&pipeline, traffic, collector.as_deref(), &settings);
                let _ = done.send(report);
            })
            .map_err(CommandError::Thread)?;
        self.shutdown_done = Some(done_rx);
        self.phase = RunnerState::ShuttingDown { sigterm_ms };
        Ok(())
    }

    fn new_runner(&mut self) -> Result<(), CommandError> {
        if self.phase != RunnerState::Ended {
            return Err(CommandError::StillRunning);
        }
        let id = self.runner_id + 1;
        self.session.restart_runner(&self.applied, id)?;
        self.runner_id = id;
        self.phase = RunnerState::Running;
        if !self.served_by_app {
            self.start_traffic();
        }
        Ok(())
    }

    /// Ends everything this engine started, without waiting on the backend.
    fn close(mut self) {
        if let Some(job) = &self.compare {
            job.stop();
        }
        if let Some(app) = &self.app {
            app.kill();
        }
        drop(self.app_closing.take());
        if let Some(mut traffic) = self.traffic.take() {
            traffic.detach_arrivals().stop();
        }
        if self.phase == RunnerState::Running {
            self.session
                .pipeline
                .kill(self.session.collector.as_deref());
        }
        let _ = self.session.finish(&self.applied);
    }

    /// Housekeeping between snapshots: a finished shutdown, an hour of traffic over.
    fn tick(&mut self) {
        self.what_if.tick(&self.applied);
        if let Some(done) = &self.shutdown_done {
            match done.try_recv() {
                Ok(report) => {
                    self.last_shutdown = Some(report);
                    self.shutdown_done = None;
                    self.phase = RunnerState::Ended;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.shutdown_done = None;
                    self.phase = RunnerState::Ended;
                    self.last_error = Some("the shutdown thread ended without a report".into());
                }
            }
        }
        // A scenario with `shutdown.at_s` replays its SIGTERM in the window too (once,
        // for the first runner; later runners wait for the button).
        if let Some(at_s) = self.applied.shutdown.at_s
            && self.phase == RunnerState::Running
            && !self.served_by_app
            && self.runner_id == FIRST_RUNNER
            && self.traffic_started.elapsed() >= Duration::from_secs_f64(at_s)
        {
            self.last_error = self.shutdown().err().map(|e| e.to_string());
        }
        if self.phase == RunnerState::Running
            && !self.served_by_app
            && self.traffic_started.elapsed() >= Duration::from_secs_f64(GUI_TRAFFIC_S)
        {
            self.restart_traffic();
        }
    }

    fn snapshot(&self) -> Snapshot {
        let collector = self.session.collector.as_deref();
        let mut report = Report::build(
            &self.session.record,
            &self.applied,
            collector.map(|c| c.stats()),
        );
        report.shutdown = self.last_shutdown.clone();
        Snapshot {
            report,
            phase: self.phase.clone(),
            last_shutdown: self.last_shutdown.clone(),
            runner_id: self.runner_id,
            collector_addr: collector.map(|c| c.addr().to_string()),
            recent_trace: collector.and_then(newest_whole_trace),
            last_error: self.last_error.clone(),
            file_message: self.file_message.clone(),
            opened: self.opened,
            rejected: self.rejected,
            last_image: self.session.record.last_image(),
            what_if: self.what_if.view(&self.applied),
            served_by_app: self.served_by_app,
            app: self.app.as_ref().map(|app| Arc::new(app.view())),
            compare: self.compare.as_ref().map(|job| Arc::new(job.view())),
        }
    }
}
