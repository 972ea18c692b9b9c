//! `gracetrace probe`'s arguments, its summary lines and its JSON report. Exit codes: 0 when
//! the shutdown was observed (the app exited after SIGTERM, or was SIGKILLed), 1 when the
//! app ended before SIGTERM (nothing was probed; the report is still written) or the probe
//! failed, 2 for bad input (a flag, a setting, a command that cannot be started).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

use super::{ProbeError, SigtermWhen, check_protocol, run_probe};
use crate::config::Settings;
use crate::record::probe::{Prediction, ProbeReport};
use crate::record::report::ReportOut;

/// Longest `--sigterm-at`: an hour, like every other time in the settings.
const MAX_SIGTERM_AT_S: f64 = 3600.0;

/// Run your own app under the platform's shutdown and report, from the collector's side,
/// what its OpenTelemetry SDK delivered.
#[derive(Clone, Debug, clap::Args)]
pub struct ProbeArgs {
    /// The platform whose grace period applies (as `shutdown.platform`).
    #[arg(long)]
    pub platform: Option<String>,
    /// SIGTERM to SIGKILL, milliseconds (as `shutdown.grace_ms`; wins over --platform).
    #[arg(long)]
    pub grace_ms: Option<String>,
    /// Send SIGTERM this many seconds after the app starts; without it, when Enter is
    /// pressed (or stdin closes, or the probe gets SIGINT/SIGTERM).
    #[arg(long, allow_negative_numbers = true)]
    pub sigterm_at: Option<f64>,
    /// Scenario TOML whose settings apply (collector faults, batch settings, platform).
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Override one knob, `key=value` (repeatable), e.g. `collector.latency_ms=2000`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Write the JSON report here (`-` for stdout, after the app's own output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// The app's command line.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// A bad `--sigterm-at`, naming the value.
#[derive(Debug, thiserror::Error)]
#[error("--sigterm-at {0}: expected seconds from 0 to {MAX_SIGTERM_AT_S}")]
pub struct SigtermAtError(pub f64);

impl ProbeArgs {
    /// The settings: scenario, environment, then --platform, --grace-ms and --set.
    pub fn settings(&self) -> Result<Settings, String> {
        let mut overrides = Vec::new();
        if let Some(platform) = &self.platform {
            overrides.push(format!("shutdown.platform={platform}"));
        }
        if let Some(grace) = &self.grace_ms {
            overrides.push(format!("shutdown.grace_ms={grace}"));
        }
        overrides.extend(self.overrides.iter().cloned());
        Settings::load_from_process(self.scenario.as_deref(), &overrides).map_err(|e| e.to_string())
    }

    /// `--sigterm-at` as a delay, checked.
    pub fn sigterm_after(&self) -> Result<Option<Duration>, SigtermAtError> {
        match self.sigterm_at {
            None => Ok(None),
            Some(s) if s.is_finite() && (0.0..=MAX_SIGTERM_AT_S).contains(&s) => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            Some(s) => Err(SigtermAtError(s)),
        }
    }
}

/// Builds gracetrace's own prediction for a finished probe run (`session::probe_predict`,
/// passed in: the simulator is not below this layer), or says why it could not.
pub type Predictor = dyn Fn(&Settings, &ProbeReport) -> Result<Prediction, String>;

/// `gracetrace probe`: checks every input before starting anything, runs the app, adds the
/// prediction, prints the summary on stderr and writes the report.
pub fn probe_command(args: ProbeArgs, predict: &Predictor) -> ExitCode {
    let bad = |error: &dyn std::fmt::Display| {
        eprintln!("gracetrace probe: {error}");
        ExitCode::from(2)
    };
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(error) => return bad(&error),
    };
    let after = match args.sigterm_after() {
        Ok(after) => after,
        Err(error) => return bad(&error),
    };
    let protocol = match check_protocol(&|var| std::env::var(var).ok()) {
        Ok(protocol) => protocol,
        Err(error) => return bad(&error),
    };
    let out = match args.json.as_deref().map(ReportOut::check).transpose() {
        Ok(out) => out,
        Err(error) => return bad(&error),
    };
    let sigterm = match after {
        Some(after) => SigtermWhen::After(after),
        None => match enter_or_signal() {
            Ok(asked) => {
                eprintln!("gracetrace probe: press Enter to send the app SIGTERM");
                SigtermWhen::OnSignal(asked)
            }
            Err(error) => {
                eprintln!("gracetrace probe: cannot catch signals: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut report = match run_probe(&settings, protocol, &args.command, sigterm) {
        Ok(report) => report,
        Err(error @ (ProbeError::Spawn { .. } | ProbeError::NoCommand)) => return bad(&error),
        Err(error) => {
            eprintln!("gracetrace probe: {error}");
            return ExitCode::FAILURE;
        }
    };
    match predict(&settings, &report) {
        Ok(prediction) => report.prediction = Some(prediction),
        Err(why) => report.prediction_error = Some(why),
    }
    eprintln!("{}", summary(&report));
    if let Some(out) = out {
        let written = serde_json::to_string_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|text| out.write(&text).map_err(|e| e.to_string()));
        if let Err(error) = written {
            eprintln!("gracetrace probe: cannot write the report to {out}: {error}");
            return ExitCode::FAILURE;
        }
    }
    if report.probe.sigterm_ms.is_none() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

/// A channel that gets a message when the user presses Enter (or stdin ends) or the probe
/// gets SIGINT or SIGTERM: each means "begin the shutdown now".
fn enter_or_signal() -> std::io::Result<Receiver<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let (mut interrupt, mut terminate) = {
        let _inside = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        )
    };
    let by_signal = tx.clone();
    std::thread::Builder::new()
        .name("gracetrace-probe-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            });
            let _ = by_signal.send(());
        })?;
    std::thread::Builder::new()
        .name("gracetrace-probe-enter".into())
        .spawn(move || {
            let mut line = String::new();
            // A line or the end of stdin: either way the user asks for the shutdown.
            let _ = std::io::stdin().read_line(&mut line);
            let _ = tx.send(());
        })?;
    Ok(rx)
}

/// The summary lines: the shutdown as the app lived it, then as the collector saw it.
pub fn summary(report: &ProbeReport) -> String {
    let p = &report.probe;
    let c = &report.collector;
    let ms = |v: f64| format!("{v:.0} ms");
    let ended = p.ending();
    let at = p
        .exit_ms
        .map_or_else(String::new, |t| format!(" at {}", ms(t)));
    let shutdown = match p.sigterm_ms {
        None => format!("the app {ended}{at}, before SIGTERM: no shutdown was probed"),
        Some(t) => format!(
            "SIGTERM at {}, grace {} ms; the app {ended}{at}",
            ms(t),
            p.grace_ms
        ),
    };
    let sdk = crate::record::AppResource {
        service_name: p.service_name.clone(),
        sdk_language: p.sdk.language.clone(),
        sdk_version: p.sdk.version.clone(),
    };
    let app = match &p.service_name {
        Some(name) => format!("app {name:?} runs {}", sdk.describe()),
        None if p.sdk.language.is_none() => "no resource arrived".to_owned(),
        None => format!("the app runs {}", sdk.describe()),
    };
    format!(
        "gracetrace probe: {shutdown}\n\
         collector: {} spans in {} requests; after SIGTERM {} spans in {} requests; \
         {} cut off mid-body, {} abandoned unanswered; {} orphan spans in {} traces \
         (root never arrived)\n\
         {app}\n\
         {}",
        c.spans_received,
        c.requests_accepted,
        p.spans_after_sigterm,
        p.requests_after_sigterm,
        p.requests_cut_off,
        p.requests_abandoned,
        p.orphan_spans,
        p.orphan_traces,
        prediction_line(report),
    )
}

/// "estimate: predicted N lost at SIGKILL, observed M missing", or why there is none.
fn prediction_line(report: &ProbeReport) -> String {
    let Some(prediction) = &report.prediction else {
        let why = report.prediction_error.as_deref().unwrap_or("not made");
        return format!("prediction: none ({why})");
    };
    let (i, n) = (&prediction.inputs, &prediction.predicted);
    let observed = match prediction.observed_missing {
        Some(missing) => format!("observed {missing} missing"),
        None => format!(
            "observed {} received (the app did not say how many it ended)",
            report.collector.spans_received
        ),
    };
    format!(
        "estimate ({} rules, {:.0} spans/s, {:.1} spans/trace, batches of {:.0}): predicted {} \
         lost at SIGKILL ({} received of {} ended), {observed}",
        i.semantics,
        i.spans_per_s,
        i.spans_per_trace,
        i.batch_spans_mean,
        n.lost_at_kill,
        n.received,
        n.ended,
    )
}
