//! The window's "your app": the user's own app run under the probe (`lifecycle::probe`) on
//! a thread of its own, watched as it goes (the collector's counts, the app's last lines of
//! output, a recent trace), then given the prediction, as `gracetrace probe` does. Given a
//! URL, the app is a server: the probe sends it the scenario's traffic as `probe --url`
//! does, and the view's report carries the `load` section so far while it runs. The
//! engine ([`super::live`]) owns one [`AppRun`] and puts its [`AppView`] in every snapshot;
//! nothing here ever makes the engine wait on the app or its collector.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::collector::{Collector, StoredTrace};
use crate::config::Settings;
pub use crate::lifecycle::probe::Stream;
use crate::lifecycle::probe::load::{EarlySigterm, LoadPlan};
use crate::lifecycle::probe::target::{LoadTarget, TargetError, TargetText};
use crate::lifecycle::probe::{self, ProbeError, Protocol, SigtermWhen, Watcher};
use crate::record::probe::ProbeReport;

use super::probe_compare::CompareError;
use super::{newest_whole_trace, probe_predict};

/// Lines of the app's output the window keeps.
pub const LOG_LINES: usize = 200;
/// Characters kept of one line (a progress bar redrawn with `\r`, a dumped blob).
const MAX_LINE_CHARS: usize = 400;
/// How long closing the window waits for the app to be gone after its SIGKILL.
const KILL_WAIT: Duration = Duration::from_secs(3);

/// Why the app was not started or signalled; each names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("no command: type your app's command line, e.g. python3 app.py")]
    Empty,
    #[error("cannot split the command line {0:?}: a quote is not closed")]
    Unclosed(String),
    /// The app's environment asks for an OTLP protocol the collector does not take.
    #[error(transparent)]
    Protocol(ProbeError),
    #[error("cannot start the thread that watches the app: {0}")]
    Thread(#[source] std::io::Error),
    #[error("your app is still running: shut it down first")]
    StillRunning,
    #[error("your app is not running")]
    NotRunning,
    /// The URL or the ready path is not one the load can use.
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("a comparison is running: wait for its last run to end")]
    CompareRunning,
    /// The comparison's `KEY=A,B,...` is not one the probe can run.
    #[error(transparent)]
    Compare(#[from] CompareError),
}

/// What Start was given: the command line and, for a server, where its traffic goes
/// (both empty: no traffic, the app makes its own).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppStart {
    pub line: String,
    /// `http://host:port/path`, as `probe --url` takes it.
    pub url: String,
    /// Ready when GET of this path answers 2xx, else when the port takes a connection.
    pub ready_path: String,
}

impl AppStart {
    /// The command line in words.
    pub fn command(&self) -> Result<Vec<String>, AppError> {
        split_command_line(&self.line)
    }

    /// Where the traffic goes, checked; `None` without a URL (a ready path alone is
    /// refused, as `--ready-path` without `--url` is).
    pub fn target(&self) -> Result<Option<LoadTarget>, AppError> {
        let (url, ready_path) = (self.url.trim(), self.ready_path.trim());
        if url.is_empty() {
            return match ready_path.is_empty() {
                true => Ok(None),
                false => Err(TargetError::NeedsUrl("--ready-path").into()),
            };
        }
        let text = TargetText {
            url,
            ready_path: (!ready_path.is_empty()).then_some(ready_path),
            ..TargetText::default()
        };
        Ok(Some(LoadTarget::from_text(&text)?))
    }
}

/// Splits a command line into the program and its arguments as a POSIX shell splits words
/// (quotes, backslashes), without running a shell: no variables, globs, pipes or `&&`.
pub fn split_command_line(line: &str) -> Result<Vec<String>, AppError> {
    let words = shlex::split(line).ok_or_else(|| AppError::Unclosed(line.to_owned()))?;
    if words.is_empty() {
        return Err(AppError::Empty);
    }
    Ok(words)
}

/// Where the app is in its life.
#[derive(Clone, Debug, PartialEq)]
pub enum AppPhase {
    /// The collector and the app are being started.
    Starting,
    Running,
    /// SIGTERM was sent; SIGKILL follows at the end of the grace period unless it exits.
    ShuttingDown,
    /// The app has ended; the collector's counts are settling.
    Counting,
    /// The counts are final; the simulator's estimate is being made.
    Estimating,
    Ended,
    /// It could not be started or watched: why, in words.
    Failed(String),
}

impl AppPhase {
    /// The phase in a few words, for the window.
    pub fn words(&self) -> String {
        match self {
            AppPhase::Starting => "starting".into(),
            AppPhase::Running => "running".into(),
            AppPhase::ShuttingDown => "got SIGTERM".into(),
            AppPhase::Counting => "ended; counting what arrived".into(),
            AppPhase::Estimating => "ended; estimating its queue".into(),
            AppPhase::Ended => "ended".into(),
            AppPhase::Failed(why) => format!("could not run: {why}"),
        }
    }
}

/// One line the app wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub stream: Stream,
    pub text: String,
}

/// What the window shows of the app. Every number is in `report`, the very report
/// `gracetrace probe --json` writes (so far while the app runs, final after).
#[derive(Clone, Debug)]
pub struct AppView {
    /// Which Start this is (1, 2, ...).
    pub run: u64,
    pub command: Vec<String>,
    /// Where the probe sends its traffic; `None`: the app makes its own.
    pub url: Option<String>,
    pub phase: AppPhase,
    pub report: Option<Arc<ProbeReport>>,
    /// The probe's own collector, where the app exports.
    pub collector_addr: Option<String>,
    /// The newest trace whose root has arrived, for the waterfall.
    pub recent_trace: Option<Arc<StoredTrace>>,
    /// The last [`LOG_LINES`] lines of its stdout and stderr, oldest first.
    pub log: VecDeque<LogLine>,
}

impl AppView {
    fn new(run: u64, command: Vec<String>, phase: AppPhase) -> AppView {
        AppView {
            run,
            command,
            url: None,
            phase,
            report: None,
            collector_addr: None,
            recent_trace: None,
            log: VecDeque::new(),
        }
    }
}

/// What the watching thread shares with the engine.
struct Shared {
    view: Mutex<AppView>,
    /// Set when the window closes: SIGKILL the app at once.
    kill: AtomicBool,
    /// Set once the app's process has ended (or never started).
    gone: AtomicBool,
}

impl Shared {
    fn update(&self, change: impl FnOnce(&mut AppView)) {
        change(&mut self.view.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The app the window started, and the thread that watches it.
pub struct AppRun {
    shared: Arc<Shared>,
    sigterm: Option<Sigterm>,
}

/// How the window's Shutdown reaches the probe.
enum Sigterm {
    /// Without traffic: a message (or the sender dropped: the probe takes a closed
    /// channel as asked).
    Asked(Sender<()>),
    /// Under the load: sooner than the plan's own time.
    Early(EarlySigterm),
}

impl AppRun {
    /// Starts the command under the probe with `settings` (faults, batch, sampling,
    /// grace) on a thread of its own, with the scenario's traffic to its URL if it has
    /// one (SIGTERM then at the traffic's end or `shutdown.at_s`, or at Shutdown if
    /// sooner); returns at once. A line that cannot be split, a bad URL or an
    /// environment asking for an unknown OTLP protocol is refused here (a `grpc` app
    /// gets a gRPC listener); a command that cannot be executed, or a server that never
    /// becomes ready, shows as [`AppPhase::Failed`] a moment later.
    pub fn start(settings: &Settings, start: &AppStart, run: u64) -> Result<AppRun, AppError> {
        let command = start.command()?;
        let target = start.target()?;
        let protocol =
            probe::check_protocol(&|var| std::env::var(var).ok()).map_err(AppError::Protocol)?;
        let mut view = AppView::new(run, command.clone(), AppPhase::Starting);
        view.url = target.as_ref().map(|t| t.url.text.clone());
        let shared = Arc::new(Shared {
            view: Mutex::new(view),
            kill: AtomicBool::new(false),
            gone: AtomicBool::new(false),
        });
        let (driven, sigterm) = match target {
            Some(target) => {
                let plan = LoadPlan::new(settings, target, None);
                let early = plan.early.clone();
                (Driven::Load(Box::new(plan)), Sigterm::Early(early))
            }
            None => {
                let (sigterm, asked) = channel();
                (
                    Driven::Asked(SigtermWhen::OnSignal(asked)),
                    Sigterm::Asked(sigterm),
                )
            }
        };
        let settings = settings.clone();
        let watching = shared.clone();
        std::thread::Builder::new()
            .name("gracetrace-your-app".into())
            .spawn(move || watch_app(&settings, protocol, &command, driven, &watching))
            .map_err(AppError::Thread)?;
        Ok(AppRun {
            shared,
            sigterm: Some(sigterm),
        })
    }

    /// A run that never started, kept to show why.
    pub fn failed(run: u64, line: &str, error: &AppError) -> AppRun {
        let view = AppView::new(
            run,
            vec![line.to_owned()],
            AppPhase::Failed(error.to_string()),
        );
        AppRun {
            shared: Arc::new(Shared {
                view: Mutex::new(view),
                kill: AtomicBool::new(false),
                gone: AtomicBool::new(true),
            }),
            sigterm: None,
        }
    }

    /// What the window shows now.
    pub fn view(&self) -> AppView {
        self.shared
            .view
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the app's process has ended (or never started).
    pub fn is_gone(&self) -> bool {
        self.shared.gone.load(Relaxed)
    }

    /// The platform's SIGTERM, now; SIGKILL follows at the grace period's end. Under a
    /// load that is not yet under way (the server not ready), SIGTERM comes as soon as
    /// it is.
    pub fn sigterm(&self) -> Result<(), AppError> {
        let running = self.view().phase == AppPhase::Running;
        match &self.sigterm {
            Some(Sigterm::Asked(sigterm)) if running => {
                sigterm.send(()).map_err(|_| AppError::NotRunning)
            }
            Some(Sigterm::Early(early)) if running => {
                early.ask();
                Ok(())
            }
            _ => Err(AppError::NotRunning),
        }
    }

    /// SIGKILL to the app's whole group at once, waiting (a little) until it is gone: the
    /// window is closing, and no process of the app may outlive it.
    pub fn kill(&self) {
        self.shared.kill.store(true, Relaxed);
        let deadline = Instant::now() + KILL_WAIT;
        while !self.is_gone() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// What drives the app: the window's Shutdown alone, or the load (its plan's SIGTERM,
/// or Shutdown's if sooner).
enum Driven {
    Asked(SigtermWhen),
    Load(Box<LoadPlan>),
}

/// The watching thread: the probe run, then the prediction, each step into the view.
fn watch_app(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    driven: Driven,
    shared: &Arc<Shared>,
) {
    let watcher = Arc::new(ToView(shared.clone()));
    let result = match driven {
        Driven::Asked(sigterm) => {
            probe::run_probe_with(settings, protocol, command, sigterm, watcher)
        }
        Driven::Load(plan) => {
            probe::run_load_probe_with(settings, protocol, command, *plan, watcher)
        }
    };
    shared.gone.store(true, Relaxed);
    let mut report = match result {
        Ok(report) => report,
        Err(error) => return shared.update(|v| v.phase = AppPhase::Failed(error.to_string())),
    };
    shared.update(|v| {
        v.phase = AppPhase::Estimating;
        v.report = Some(Arc::new(report.clone()));
    });
    if shared.kill.load(Relaxed) {
        return; // the window is closing: nobody will read the estimate
    }
    match probe_predict::predict(settings, &report) {
        Ok(prediction) => report.prediction = Some(prediction),
        Err(why) => report.prediction_error = Some(why.to_string()),
    }
    shared.update(|v| {
        v.phase = AppPhase::Ended;
        v.report = Some(Arc::new(report));
    });
}

/// The probe's watcher for the window: lines and progress into the shared view.
struct ToView(Arc<Shared>);

impl Watcher for ToView {
    fn captures_stderr(&self) -> bool {
        true // the window has no terminal: its log is the app's only output
    }

    fn line(&self, stream: Stream, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text: String = text.trim_end().chars().take(MAX_LINE_CHARS).collect();
        self.0.update(|v| {
            if v.log.len() == LOG_LINES {
                v.log.pop_front();
            }
            v.log.push_back(LogLine { stream, text });
        });
    }

    fn progress(&self, report: &ProbeReport, collector: &Collector) {
        let trace = newest_whole_trace(collector).map(Arc::new);
        let p = &report.probe;
        let phase = match (p.exit_ms, p.sigterm_ms) {
            (Some(_), _) => AppPhase::Counting,
            (None, Some(_)) => AppPhase::ShuttingDown,
            (None, None) => AppPhase::Running,
        };
        let report = Arc::new(report.clone());
        self.0.update(|v| {
            v.phase = phase;
            v.report = Some(report);
            v.collector_addr = Some(collector.addr().to_string());
            if trace.is_some() {
                v.recent_trace = trace;
            }
        });
    }

    fn kill_now(&self) -> bool {
        self.0.kill.load(Relaxed)
    }

    fn live_load(&self) -> bool {
        true // the request and latency charts draw it as it grows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words as a shell splits them, quotes kept together; nothing is expanded; an empty
    /// line and an open quote are refused, naming what is wrong.
    #[test]
    fn command_lines_split_as_a_shell_would_without_one() {
        let words = split_command_line(r#"python3 "my app.py" --name 'a b' $HOME"#).unwrap();
        assert_eq!(words, ["python3", "my app.py", "--name", "a b", "$HOME"]);
        for empty in ["", "   "] {
            let error = split_command_line(empty).unwrap_err();
            assert!(error.to_string().starts_with("no command"), "{error}");
        }
        let error = split_command_line("python3 'app.py").unwrap_err();
        assert!(error.to_string().contains("'app.py"), "{error}");
    }
}
