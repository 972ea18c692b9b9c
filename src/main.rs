//! The `gracetrace` command: the desktop window (`gui`, the default with no subcommand),
//! `run` a scenario headless, `sweep` one over a grid of knob values in virtual time,
//! `advise` the settings that lose nothing, `probe` your own app under the same
//! shutdown, `collect` as a stand-alone OTLP collector (HTTP, and gRPC when asked), list
//! the `knobs`; `train` the inference model's weights and `infer` one image with them.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use gracetrace::collector::cli::{CollectArgs, run_collect};
use gracetrace::config::{Settings, knobs};
use gracetrace::lifecycle::probe::cli::{ProbeArgs, probe_command};
use gracetrace::lifecycle::process::runner_command;
use gracetrace::record::ExitProgress;
use gracetrace::record::report::ReportOut;
use gracetrace::session::advise::cli::{AdviseArgs, advise_command};
use gracetrace::session::sweep::cli::{SweepArgs, sweep_command};
use gracetrace::workload::model::{InferArgs, TrainArgs, infer_command, train_command};

#[derive(Parser)]
#[command(
    name = "gracetrace",
    version,
    about = "See and tune how many OpenTelemetry spans an inference server loses to full \
             queues and to SIGKILL."
)]
struct Cli {
    /// Without a subcommand, the window opens (`gui`).
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Open the window: live controls, the span queue, the exports, the shutdown timeline.
    Gui {
        /// Scenario TOML to start from; without it, the settings of the last session.
        #[arg(long)]
        scenario: Option<PathBuf>,
    },
    /// Run a scenario through the real SDK, exporter and collector; report every span.
    Run {
        /// Scenario TOML (see assets/scenarios/); without it, defaults and environment.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Override one knob, `key=value` (repeatable); wins over the file and environment.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Write the JSON report here (`-` for stdout).
        #[arg(long)]
        json: Option<PathBuf>,
        /// `real`: the threaded pipeline in real time; `virtual`: the simulator, its
        /// per-export costs measured by a short real run first.
        #[arg(long, value_enum, default_value_t = Clock::Real)]
        clock: Clock,
    },
    /// Serve a scenario's traffic as a real runner process exporting to ENDPOINT until
    /// SIGTERM, then shut down as the app would (the real-process check of SIGKILL).
    Runner {
        #[arg(long)]
        endpoint: String,
        #[arg(long, default_value_t = 1)]
        runner_id: u64,
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
    },
    /// Run a scenario in virtual time for every combination of knob values (`--vary`), in
    /// parallel; a table of spans lost per cell, and JSON/CSV for a notebook.
    Sweep(SweepArgs),
    /// The settings that lose no span for a scenario (queue size, schedule delay, shutdown
    /// changes) and their ingestion cost, each found by simulated runs.
    Advise(AdviseArgs),
    /// Run your own app (`-- CMD ARGS...`) against the embedded collector, send it a real
    /// SIGTERM and, at the end of the grace period, SIGKILL; report what arrived.
    Probe(ProbeArgs),
    /// Run the OTLP collector alone (HTTP, and gRPC with --grpc-listen), with optional
    /// injected faults.
    Collect(CollectArgs),
    /// List every knob: key, environment variable, range and default.
    Knobs,
    /// Train the glyph diffusion model on the CPU and write its weights (burnpack), the
    /// loss curve and a sample sheet.
    Train(TrainArgs),
    /// Generate one image from a prompt with the trained model; print timings and trace id.
    Infer(InferArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Gui { scenario: None }) {
        Command::Gui { scenario } => match gracetrace::ui::run_gui(scenario.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("gracetrace: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Run {
            scenario,
            overrides,
            json,
            clock,
        } => run(scenario, &overrides, json, clock),
        Command::Runner {
            endpoint,
            runner_id,
            scenario,
            mut overrides,
        } => {
            overrides.push(format!("exporter.endpoint={endpoint}"));
            match Settings::load_from_process(scenario.as_deref(), &overrides) {
                Ok(settings) => runner_command(&settings, endpoint, runner_id),
                Err(error) => {
                    eprintln!("gracetrace: {error}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Sweep(args) => sweep_command(args),
        Command::Advise(args) => advise_command(args),
        Command::Collect(args) => run_collect(args),
        Command::Probe(args) => probe_command(args, &|settings, report| {
            gracetrace::session::probe_predict::predict(settings, report).map_err(|e| e.to_string())
        }),
        Command::Knobs => {
            print_knobs();
            ExitCode::SUCCESS
        }
        Command::Train(args) => train_command(args),
        Command::Infer(args) => infer_command(args),
    }
}

/// Which engine `run` drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Clock {
    Real,
    Virtual,
}

/// The report of one run on `clock`; the exit code on failure (2: the scenario cannot
/// run in virtual time, naming the setting).
fn report_on(
    settings: &Settings,
    clock: Clock,
) -> Result<gracetrace::record::report::Report, ExitCode> {
    let fail = |error: &dyn std::fmt::Display, code: u8| {
        eprintln!("gracetrace: {error}");
        ExitCode::from(code)
    };
    match clock {
        Clock::Real => gracetrace::session::run_with_progress(settings, &progress_line)
            .map_err(|e| fail(&e, 1)),
        Clock::Virtual => {
            let costs = gracetrace::session::virtual_clock::calibrate().map_err(|e| fail(&e, 1))?;
            gracetrace::session::virtual_clock::run_virtual(settings, costs)
                .map_err(|e| fail(&e, 2))
        }
    }
}

fn run(
    scenario: Option<PathBuf>,
    overrides: &[String],
    json: Option<PathBuf>,
    clock: Clock,
) -> ExitCode {
    let settings = match Settings::load_from_process(scenario.as_deref(), overrides) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("gracetrace: {error}");
            return ExitCode::from(2);
        }
    };
    let out = match json.as_deref().map(ReportOut::check).transpose() {
        Ok(out) => out,
        Err(error) => {
            eprintln!("gracetrace: {error}");
            return ExitCode::from(2);
        }
    };
    let report = match report_on(&settings, clock) {
        Ok(report) => report,
        Err(code) => return code,
    };
    if report.exit.as_ref().is_some_and(|e| e.timed_out) && std::io::stderr().is_terminal() {
        eprintln!(); // ends the progress line
    }
    eprintln!("{}", report.summary());
    let Some(out) = out else {
        return ExitCode::SUCCESS;
    };
    let written = serde_json::to_string_pretty(&report)
        .map_err(|e| format!("cannot encode the report: {e}"))
        .and_then(|text| {
            out.write(&text)
                .map_err(|e| format!("cannot write {out}: {e}"))
        });
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gracetrace: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What the end of the run waits for: redrawn in place every second on a terminal, a line
/// every 5 s otherwise (a log keeps the story without a line a second).
fn progress_line(progress: &ExitProgress) {
    if std::io::stderr().is_terminal() {
        eprint!("\r{progress}\x1b[K");
    } else if (progress.waited_s as u64).is_multiple_of(5) {
        eprintln!("{progress}");
    }
}

fn print_knobs() {
    let defaults = Settings::default();
    println!(
        "{:<36} {:<34} {:<14} range",
        "key", "environment", "default"
    );
    for knob in knobs::KNOBS {
        println!(
            "{:<36} {:<34} {:<14} {}",
            knob.key,
            knob.env.unwrap_or("-"),
            (knob.get)(&defaults),
            knob.range()
        );
    }
}
