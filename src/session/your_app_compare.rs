//! The window's compare: the user's app run once per value of one knob, as `gracetrace
//! probe --compare KEY=A,B,...` does (`probe_compare`), on a thread of its own, each run's
//! row published as soon as that run has ended. The engine ([`super::live`]) owns the job
//! and puts its [`CompareView`] in every snapshot; nothing here makes the engine wait.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::probe_compare::{Compare, CompareDrive, CompareError, run_compare};
use super::your_app::{AppError, AppStart};
use crate::config::Settings;
use crate::lifecycle::probe::{self, Protocol};
use crate::record::compare::CompareRow;

/// One run that has ended: the value and its row of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct ComparedRun {
    pub value: String,
    pub row: CompareRow,
}

/// What the window shows of a comparison.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CompareView {
    pub key: String,
    /// Every value, in the order they run.
    pub values: Vec<String>,
    /// The runs that have ended, in order.
    pub runs: Vec<ComparedRun>,
    /// The value running now, by its place in `values`.
    pub running: Option<usize>,
    /// Why the comparison stopped before its last value.
    pub error: Option<String>,
    pub done: bool,
}

/// A comparison running on its own thread.
pub struct CompareJob {
    view: Arc<Mutex<CompareView>>,
    /// Set when the window closes: no further run starts.
    stop: Arc<AtomicBool>,
}

/// Everything a run of the comparison needs, checked before the thread starts.
struct Plan {
    settings: Settings,
    compare: Compare,
    protocol: Protocol,
    command: Vec<String>,
    drive: CompareDrive,
}

/// Checks a comparison before it is asked for: what [`CompareJob::start`] would refuse,
/// for the window's line under its field.
pub fn check(settings: &Settings, start: &AppStart, text: &str) -> Result<(), AppError> {
    Plan::new(settings, start, text).map(|_| ())
}

impl Plan {
    /// `text` (`KEY=A,B,...`, as `--compare` takes it) checked against `settings`, with
    /// the command line and URL of `start`. Without a URL every run needs
    /// `shutdown.at_s`, so that each gets SIGTERM at the same time.
    fn new(settings: &Settings, start: &AppStart, text: &str) -> Result<Plan, AppError> {
        let compare = Compare::parse(text, settings)?;
        let drive = match start.target()? {
            Some(target) => CompareDrive::Load {
                target: Box::new(target),
                sigterm_after: None,
            },
            None => settings
                .shutdown
                .at_s
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .map(CompareDrive::SigtermAfter)
                .ok_or(AppError::Compare(CompareError::NoSigterm))?,
        };
        Ok(Plan {
            settings: settings.clone(),
            command: start.command()?,
            protocol: probe::check_protocol(&|var| std::env::var(var).ok())
                .map_err(AppError::Protocol)?,
            drive,
            compare,
        })
    }
}

impl CompareJob {
    /// Starts the runs of a checked comparison ([`check`]) on a thread of their own;
    /// returns at once.
    pub fn start(settings: &Settings, start: &AppStart, text: &str) -> Result<Self, AppError> {
        let plan = Plan::new(settings, start, text)?;
        let view = Arc::new(Mutex::new(CompareView {
            key: plan.compare.key.to_owned(),
            values: plan.compare.values.clone(),
            ..CompareView::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (publish, stopping) = (view.clone(), stop.clone());
        std::thread::Builder::new()
            .name("gracetrace-compare".into())
            .spawn(move || run_all(&plan, &publish, &stopping))
            .map_err(AppError::Thread)?;
        Ok(CompareJob { view, stop })
    }

    /// What the window shows now.
    pub fn view(&self) -> CompareView {
        lock(&self.view).clone()
    }

    pub fn is_done(&self) -> bool {
        lock(&self.view).done
    }

    /// No further run starts (the window is closing); the one under way ends at its own
    /// SIGTERM, or with this process, whose guardian takes the app down with it.
    pub fn stop(&self) {
        self.stop.store(true, Relaxed);
    }
}

fn lock(view: &Mutex<CompareView>) -> std::sync::MutexGuard<'_, CompareView> {
    view.lock().unwrap_or_else(|e| e.into_inner())
}

/// The runs in order, one value at a time through `run_compare`, so that each row is in
/// the view as soon as its run ends; the first that fails ends the comparison with why.
fn run_all(plan: &Plan, view: &Mutex<CompareView>, stop: &AtomicBool) {
    for (i, value) in plan.compare.values.iter().enumerate() {
        if stop.load(Relaxed) {
            break;
        }
        lock(view).running = Some(i);
        let one = Compare {
            key: plan.compare.key,
            values: vec![value.clone()],
        };
        let quiet = |_: usize, _: &str| {};
        let result = run_compare(
            &plan.settings,
            &one,
            plan.protocol,
            &plan.command,
            &plan.drive,
            &quiet,
        );
        match result {
            Ok(report) => lock(view)
                .runs
                .extend(report.runs.into_iter().map(|run| ComparedRun {
                    value: run.value,
                    row: run.row,
                })),
            Err(error) => {
                lock(view).error = Some(format!("{}={value}: {error}", plan.compare.key));
                break;
            }
        }
    }
    let mut view = lock(view);
    (view.running, view.done) = (None, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Run would refuse is said before it is pressed, naming the input at fault.
    #[test]
    fn a_comparison_is_checked_before_it_runs() {
        let settings = Settings::default();
        let server = AppStart {
            line: "python3 server.py 8000".into(),
            url: "http://127.0.0.1:8000/generate".into(),
            ready_path: "/health".into(),
        };
        assert!(check(&settings, &server, "tracing.enabled=false,true").is_ok());
        let error = |start: &AppStart, text: &str| match check(&settings, start, text) {
            Ok(()) => panic!("{text} was taken"),
            Err(error) => error.to_string(),
        };
        assert!(error(&server, "nope=1,2").contains("unknown knob \"nope\""));
        let empty = AppStart {
            line: "  ".into(),
            ..server.clone()
        };
        assert!(error(&empty, "tracing.enabled=false,true").starts_with("no command"));
        let bad_url = AppStart {
            url: "ftp://x".into(),
            ..server.clone()
        };
        assert!(error(&bad_url, "tracing.enabled=false,true").starts_with("--url ftp://x"));
        // Without a URL the runs need a SIGTERM time of their own.
        let own_traffic = AppStart {
            line: server.line.clone(),
            ..AppStart::default()
        };
        let text = "tracing.enabled=false,true";
        assert!(error(&own_traffic, text).contains("shutdown.at_s"));
        let mut at = settings.clone();
        at.shutdown.at_s = Some(3.0);
        assert!(check(&at, &own_traffic, text).is_ok());
    }
}
