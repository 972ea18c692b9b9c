//! `gracetrace probe`: your own app under the platform's shutdown, and with `--url` under
//! the scenario's traffic; its arguments, its summary lines and its JSON report. Exit
//! codes: 0 when the shutdown was observed (the app exited after SIGTERM, or was
//! SIGKILLed), 1 when the app ended before SIGTERM (nothing was probed; the report is
//! still written), when the app never became ready for `--url`'s load (a timeout, or the
//! app ended first; no report) or the probe failed, 2 for bad input (a flag, a setting, a
//! command that cannot be started), 3 when a `--fail-if` condition held (the report is
//! written first).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use super::output::Output;
use super::signals::enter_or_signal;
use super::{CliError, ScenarioArgs};
use crate::config::Settings;
use crate::lifecycle::probe::fail_if::{Condition, FailIfError, first_held};
use crate::lifecycle::probe::load::LoadPlan;
use crate::lifecycle::probe::target::{LoadTarget, TargetError, TargetText};
use crate::lifecycle::probe::{ProbeError, SigtermWhen, check_protocol, run_load_probe, run_probe};
use crate::record::compare::{COLUMNS, CompareReport, TABLE_NOTE};
use crate::record::probe::ProbeReport;
use crate::session::probe_compare::{
    Compare, CompareDrive, CompareError, add_prediction, run_compare,
};

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
    /// Send SIGTERM this many seconds after the app starts (with --url: after its traffic
    /// starts); without it, when Enter is pressed (or stdin closes, or the probe gets
    /// SIGINT/SIGTERM), or with --url at `shutdown.at_s` or when the traffic ends.
    #[arg(long, allow_negative_numbers = true)]
    pub sigterm_at: Option<f64>,
    /// Scenario TOML whose settings apply (collector faults, batch settings, platform),
    /// and `--set key=value` overrides, e.g. `collector.latency_ms=2000`.
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Write the JSON report here (`-` for stdout, after the app's own output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Send the scenario's traffic (`workload.*`) to this URL, http://host:port/path,
    /// once the app is ready; SIGTERM then counts from the traffic's start (`--sigterm-at`,
    /// else `shutdown.at_s`, else when the traffic ends).
    #[arg(long)]
    pub url: Option<String>,
    /// The load's method, GET (the default) or POST.
    #[arg(long)]
    pub method: Option<String>,
    /// The load's request body, read from this file.
    #[arg(long)]
    pub body: Option<PathBuf>,
    /// An extra header of every request, `'Name: value'` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Ready when GET of this path answers 2xx (else: when the URL's port takes a TCP
    /// connection).
    #[arg(long)]
    pub ready_path: Option<String>,
    /// How long the app may take to become ready, seconds (default 30).
    #[arg(long)]
    pub ready_timeout_s: Option<f64>,
    /// How long one request may take before it counts as a timeout, seconds (default 30).
    #[arg(long)]
    pub timeout_s: Option<f64>,
    /// Exit 3 when this holds: `lost_traces>N`, `failed_requests>N` (both need --url),
    /// `killed` (repeatable; the first that holds is named).
    #[arg(long = "fail-if", value_name = "COND")]
    pub fail_if: Vec<String>,
    /// Run the app once per value of a knob, each a fresh process with the same traffic,
    /// and print the runs side by side: `tracing.enabled=false,true` is what tracing
    /// costs the app (latency, throughput, CPU) and what the shutdown loses with it.
    #[arg(long, value_name = "KEY=A,B,...")]
    pub compare: Option<String>,
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
    pub fn settings(&self) -> Result<Settings, CliError> {
        let mut first = Vec::new();
        if let Some(platform) = &self.platform {
            first.push(format!("shutdown.platform={platform}"));
        }
        if let Some(grace) = &self.grace_ms {
            first.push(format!("shutdown.grace_ms={grace}"));
        }
        self.scenario.settings_with(&first)
    }

    /// The load `--url` and its flags describe, checked (the body file read), or `None`
    /// without `--url`. `sigterm_after` is `--sigterm-at`, which then counts from the
    /// start of the traffic.
    pub fn load_plan(
        &self,
        settings: &Settings,
        sigterm_after: Option<Duration>,
    ) -> Result<Option<LoadPlan>, TargetError> {
        let target = self.target()?;
        Ok(target.map(|target| LoadPlan::new(settings, target, sigterm_after)))
    }

    /// Where `--url` and its flags send the load, checked (the body file read); `None`
    /// without `--url`, when none of its flags may be given either.
    pub fn target(&self) -> Result<Option<LoadTarget>, TargetError> {
        let Some(url) = &self.url else {
            let given = [
                ("--method", self.method.is_some()),
                ("--body", self.body.is_some()),
                ("--header", !self.headers.is_empty()),
                ("--ready-path", self.ready_path.is_some()),
                ("--ready-timeout-s", self.ready_timeout_s.is_some()),
                ("--timeout-s", self.timeout_s.is_some()),
            ];
            return match given.into_iter().find(|(_, given)| *given) {
                Some((flag, _)) => Err(TargetError::NeedsUrl(flag)),
                None => Ok(None),
            };
        };
        let target = LoadTarget::from_text(&TargetText {
            url,
            method: self.method.as_deref(),
            body_file: self.body.as_deref(),
            headers: &self.headers,
            ready_path: self.ready_path.as_deref(),
            ready_timeout_s: self.ready_timeout_s,
            timeout_s: self.timeout_s,
        })?;
        Ok(Some(target))
    }

    /// The `--fail-if` conditions, checked.
    pub fn conditions(&self) -> Result<Vec<Condition>, FailIfError> {
        let with_load = self.url.is_some();
        self.fail_if
            .iter()
            .map(|text| Condition::parse(text, with_load))
            .collect()
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

/// Checks every input before starting anything, runs the app (under the load, with
/// `--url`; once per value, with `--compare`), adds gracetrace's own prediction (the
/// simulator with the app's settings), prints the summary on stderr, writes the report,
/// and exits 3 naming the first `--fail-if` condition that held.
pub fn probe(args: ProbeArgs) -> Result<ExitCode, CliError> {
    let settings = args.settings()?;
    let after = args.sigterm_after().map_err(CliError::input)?;
    let target = args.target().map_err(CliError::input)?;
    let conditions = args.conditions().map_err(CliError::input)?;
    let protocol = check_protocol(&|var| std::env::var(var).ok()).map_err(CliError::input)?;
    let out = Output::optional("--json", args.json.as_deref())?;
    if let Some(compare) = &args.compare {
        let run = CompareArgs {
            compare: Compare::parse(compare, &settings).map_err(CliError::input)?,
            drive: compare_drive(&settings, target, after)?,
        };
        return probe_compare(&args, &settings, protocol, run, &conditions, out);
    }
    let result = match target {
        Some(target) => {
            let plan = LoadPlan::new(&settings, target, after);
            run_load_probe(&settings, protocol, &args.command, plan)
        }
        None => run_probe(&settings, protocol, &args.command, args.sigterm_when()?),
    };
    let mut report = result.map_err(probe_error)?;
    add_prediction(&settings, &mut report);
    eprintln!("{}", summary(&report));
    if let Some(out) = out {
        out.write_json(&report)?;
    }
    if report.probe.sigterm_ms.is_none() {
        return Ok(ExitCode::FAILURE);
    }
    if let Some(line) = first_held(&conditions, &report) {
        eprintln!("gracetrace probe: {line}");
        return Ok(ExitCode::from(3));
    }
    Ok(ExitCode::SUCCESS)
}

/// A command that cannot be started is bad input (exit 2); anything else a failure.
fn probe_error(error: ProbeError) -> CliError {
    match error {
        error @ (ProbeError::Spawn { .. } | ProbeError::NoCommand) => CliError::input(error),
        error => CliError::failed(error),
    }
}

/// A checked `--compare` and how each of its runs is driven.
struct CompareArgs {
    compare: Compare,
    drive: CompareDrive,
}

/// Each run's traffic and SIGTERM: the load (SIGTERM at its plan's time), or without
/// `--url` a fixed time, which `--sigterm-at` or `shutdown.at_s` must give (waiting for
/// Enter would stop each run at a different moment).
fn compare_drive(
    settings: &Settings,
    target: Option<LoadTarget>,
    after: Option<Duration>,
) -> Result<CompareDrive, CliError> {
    if let Some(target) = target {
        return Ok(CompareDrive::Load {
            target: Box::new(target),
            sigterm_after: after,
        });
    }
    let at_s = settings
        .shutdown
        .at_s
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    match after.or(at_s) {
        Some(after) => Ok(CompareDrive::SigtermAfter(after)),
        None => Err(CliError::input(CompareError::NoSigterm)),
    }
}

/// `--compare`: every run, the side-by-side table, the report, and exit 3 naming the
/// value and the first `--fail-if` condition that held in its run.
fn probe_compare(
    args: &ProbeArgs,
    settings: &Settings,
    protocol: crate::lifecycle::probe::Protocol,
    run: CompareArgs,
    conditions: &[Condition],
    out: Option<Output>,
) -> Result<ExitCode, CliError> {
    let total = run.compare.values.len();
    let key = run.compare.key;
    let started = |i: usize, value: &str| {
        eprintln!("gracetrace probe: run {} of {total}: {key}={value}", i + 1);
    };
    let report = run_compare(
        settings,
        &run.compare,
        protocol,
        &args.command,
        &run.drive,
        &started,
    )
    .map_err(probe_error)?;
    for run in &report.runs {
        eprintln!("--- {key}={}\n{}", run.value, summary(&run.report));
    }
    eprint!("{}", compare_table(&report));
    if let Some(out) = out {
        out.write_json(&report)?;
    }
    if report
        .runs
        .iter()
        .any(|r| r.report.probe.sigterm_ms.is_none())
    {
        return Ok(ExitCode::FAILURE);
    }
    for run in &report.runs {
        if let Some(line) = first_held(conditions, &run.report) {
            eprintln!("gracetrace probe: {key}={}: {line}", run.value);
            return Ok(ExitCode::from(3));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The runs side by side, one row per value (every figure from the report's `row`).
pub fn compare_table(report: &CompareReport) -> String {
    let line = |first: &str, cells: &[&str]| {
        let (ending, figures) = cells.split_last().unwrap_or((&"", &[]));
        let mut out = format!("{first:<24}");
        for (cell, width) in figures.iter().zip(WIDTHS) {
            let _ = write!(out, " {cell:>width$}");
        }
        format!("{out}  {ending}\n")
    };
    let mut out = line(&report.key, &COLUMNS);
    for run in &report.runs {
        let cells = run.row.cells();
        out += &line(&run.value, &cells.each_ref().map(String::as_str));
    }
    out + "(" + TABLE_NOTE + ")\n"
}

/// The widths of the figures' columns in [`compare_table`] (the app's ending goes last,
/// unpadded).
const WIDTHS: [usize; 10] = [8, 8, 8, 8, 10, 8, 8, 9, 6, 7];

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
        None => format!(
            "the app {ended}{at}, before {}: no shutdown was probed",
            p.stop_signal
        ),
        Some(t) => format!(
            "{} at {}, grace {} ms; the app {ended}{at}",
            p.stop_signal,
            ms(t),
            p.grace_ms
        ),
    };
    let cpu = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), ms);
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
    let load = load_lines(report);
    format!(
        "gracetrace probe: {shutdown}\n{load}\
         collector: {} spans in {} requests; after SIGTERM {} spans in {} requests; \
         {} cut off mid-body, {} abandoned unanswered; {} orphan spans in {} traces \
         (root never arrived)\n\
         {app}; its CPU time {} before SIGTERM, {} in all\n\
         {}",
        c.spans_received,
        c.requests_accepted,
        p.spans_after_sigterm,
        p.requests_after_sigterm,
        p.requests_cut_off,
        p.requests_abandoned,
        p.orphan_spans,
        p.orphan_traces,
        cpu(p.cpu_before_sigterm_ms),
        cpu(p.cpu_total_ms),
        prediction_line(report),
    )
}

/// The load's and its traces' lines (each ending in a newline), or nothing without a load.
fn load_lines(report: &ProbeReport) -> String {
    let (Some(load), Some(traces)) = (&report.load, &report.traces) else {
        return String::new();
    };
    let failed = load.failed.in_words();
    let failed = match failed.is_empty() {
        true => String::new(),
        false => format!(" ({})", failed.join(", ")),
    };
    let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.1}"));
    let latency = |l: &crate::record::load::LoadLatency| {
        format!(
            "p50 {} p90 {} p99 {} max {} ms",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max)
        )
    };
    let ignored = match traces.traceparent_ignored {
        true => {
            "traces: the app's spans carry none of the probe's trace ids: it does not continue \
             the W3C traceparent (set a propagator, or instrument its HTTP server), so no \
             request can be followed to its trace; those not found are unknown, not lost\n"
        }
        false => "",
    };
    format!(
        "load: {} scheduled, {} sent ({} not sent after routing ended), {} answered, {} failed{failed}, \
         {} in flight at the end; {} failed after SIGTERM\n\
         latency before SIGTERM {}; after SIGTERM {}\n\
         traces: {} answered sampled requests: {} complete, {} partial, {} missing, {} unknown; \
         {} lost ({} before SIGTERM, {} after)\n{ignored}",
        load.scheduled,
        load.sent,
        load.not_sent_after_routing_end,
        load.answered,
        load.failed.total(),
        load.in_flight_at_end,
        load.failed_after_sigterm,
        latency(&load.latency_ms.before_sigterm),
        latency(&load.latency_ms.after_sigterm),
        traces.answered_sampled,
        traces.complete,
        traces.partial,
        traces.missing,
        traces.unknown,
        traces.lost,
        traces.lost_before_sigterm,
        traces.lost_after_sigterm,
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
