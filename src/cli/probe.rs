//! `gracetrace probe`: your own app under the platform's shutdown; its arguments, its
//! summary lines and its JSON report. Exit codes: 0 when the shutdown was observed (the
//! app exited after SIGTERM, or was SIGKILLed), 1 when the app ended before SIGTERM
//! (nothing was probed; the report is still written) or the probe failed, 2 for bad input
//! (a flag, a setting, a command that cannot be started).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::output::Output;
use super::signals::enter_or_signal;
use super::{CliError, ScenarioArgs};
use crate::lifecycle::probe::{ProbeError, SigtermWhen, check_protocol, run_probe};
use crate::record::probe::ProbeReport;
use crate::session::probe_predict::predict;

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
    /// Scenario TOML whose settings apply (collector faults, batch settings, platform),
    /// and `--set key=value` overrides, e.g. `collector.latency_ms=2000`.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
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

/// The signals that start the shutdown could not be caught.
#[derive(Debug, thiserror::Error)]
#[error("cannot catch signals: {0}")]
pub struct SignalsError(#[source] pub std::io::Error);

impl ProbeArgs {
    /// The settings: environment, scenario, then --platform, --grace-ms and --set.
    pub fn settings(&self) -> Result<crate::config::Settings, CliError> {
        let mut first = Vec::new();
        if let Some(platform) = &self.platform {
            first.push(format!("shutdown.platform={platform}"));
        }
        if let Some(grace) = &self.grace_ms {
            first.push(format!("shutdown.grace_ms={grace}"));
        }
        self.scenario.settings_with(&first)
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

    /// When SIGTERM goes: after `--sigterm-at`, or when the user asks.
    fn sigterm_when(&self) -> Result<SigtermWhen, CliError> {
        match self.sigterm_after().map_err(CliError::input)? {
            Some(after) => Ok(SigtermWhen::After(after)),
            None => {
                let asked = enter_or_signal().map_err(|e| CliError::failed(SignalsError(e)))?;
                eprintln!("gracetrace probe: press Enter to send the app SIGTERM");
                Ok(SigtermWhen::OnSignal(asked))
            }
        }
    }
}

/// Checks every input before starting anything, runs the app, adds gracetrace's own
/// prediction (the simulator with the app's settings), prints the summary on stderr and
/// writes the report.
pub fn probe(args: ProbeArgs) -> Result<ExitCode, CliError> {
    let settings = args.settings()?;
    args.sigterm_after().map_err(CliError::input)?;
    let protocol = check_protocol(&|var| std::env::var(var).ok()).map_err(CliError::input)?;
    let out = Output::optional("--json", args.json.as_deref())?;
    let sigterm = args.sigterm_when()?;
    let mut report = match run_probe(&settings, protocol, &args.command, sigterm) {
        Ok(report) => report,
        Err(error @ (ProbeError::Spawn { .. } | ProbeError::NoCommand)) => {
            return Err(CliError::input(error));
        }
        Err(error) => return Err(CliError::failed(error)),
    };
    match predict(&settings, &report) {
        Ok(prediction) => report.prediction = Some(prediction),
        Err(why) => report.prediction_error = Some(why.to_string()),
    }
    eprintln!("{}", summary(&report));
    if let Some(out) = out {
        out.write_json(&report)?;
    }
    if report.probe.sigterm_ms.is_none() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
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
