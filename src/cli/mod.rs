//! The `gracetrace` command line, the top layer: it parses arguments, calls the library
//! below, prints for a terminal and chooses the exit code. Nothing below this module
//! parses an argument or prints a line; a command here is arguments in, a library call,
//! text out.
//!
//! One file per command (`gui`, `run`, `runner`, `sweep`, `sweep_merge`, `advise`, `probe`,
//! `collect`, `knobs`, `train`, `infer`), `args` for what several share (`ScenarioArgs`, and
//! `CliError`: bad input exits 2 with one line, a failure exits 1), `output` for where
//! reports go (checked before any work starts), `signals` for the SIGINT/SIGTERM that stop
//! `collect` and start `probe`'s shutdown.

#[cfg(not(feature = "model"))]
mod absent;
pub mod advise;
pub mod args;
pub mod collect;
pub mod gui;
#[cfg(feature = "model")]
pub mod infer;
pub mod knobs;
pub mod output;
pub mod probe;
pub mod run;
pub mod runner;
mod signals;
pub mod sweep;
pub mod sweep_merge;
#[cfg(feature = "model")]
pub mod train;
// Without the model, `train` and `infer` answer that they need it (see `absent`).
#[cfg(not(feature = "model"))]
use absent as infer;
#[cfg(not(feature = "model"))]
use absent as train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use args::{CliError, ScenarioArgs};

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
    Gui(gui::GuiArgs),
    /// Run a scenario through the real SDK, exporter and collector; report every span.
    Run(run::RunArgs),
    /// Serve a scenario's traffic as a real runner process exporting to ENDPOINT until
    /// SIGTERM, then shut down as the app would (the real-process check of SIGKILL).
    Runner(runner::RunnerArgs),
    /// Run a scenario in virtual time for every combination of knob values (`--vary`), in
    /// parallel; a table of spans lost per cell, and JSON/CSV for a notebook.
    Sweep(sweep::SweepArgs),
    /// The settings that lose no span for a scenario (queue size, schedule delay, shutdown
    /// changes) and their ingestion cost, each found by simulated runs.
    Advise(advise::AdviseArgs),
    /// Run your own app (`-- CMD ARGS...`) against the embedded collector, send it a real
    /// SIGTERM and, at the end of the grace period, SIGKILL; report what arrived.
    Probe(probe::ProbeArgs),
    /// Run the OTLP collector alone (HTTP, and gRPC with --grpc-listen), with optional
    /// injected faults.
    Collect(collect::CollectArgs),
    /// List every knob: key, environment variable, range and default.
    Knobs,
    /// Train the glyph diffusion model on the CPU and write its weights (burnpack), the
    /// loss curve and a sample sheet.
    Train(train::TrainArgs),
    /// Generate one image from a prompt with the trained model; print timings and trace id.
    Infer(infer::InferArgs),
}

impl Command {
    /// The name printed before an error line: `gracetrace probe: ...`.
    fn name(&self) -> &'static str {
        match self {
            Command::Gui(_) => "gracetrace",
            Command::Run(_) => "gracetrace",
            Command::Runner(_) => "gracetrace runner",
            Command::Sweep(args) if args.command.is_some() => "gracetrace sweep merge",
            Command::Sweep(_) => "gracetrace sweep",
            Command::Advise(_) => "gracetrace advise",
            Command::Probe(_) => "gracetrace probe",
            Command::Collect(_) => "gracetrace collect",
            Command::Knobs => "gracetrace knobs",
            Command::Train(_) => "gracetrace train",
            Command::Infer(_) => "gracetrace infer",
        }
    }

    fn run(self) -> Result<ExitCode, CliError> {
        match self {
            Command::Gui(args) => gui::gui(args),
            Command::Run(args) => run::run(args),
            Command::Runner(args) => runner::runner(args),
            Command::Sweep(sweep::SweepArgs {
                command: Some(sweep::SweepCommand::Merge(args)),
                ..
            }) => sweep_merge::merge(args),
            Command::Sweep(args) => sweep::sweep(args),
            Command::Advise(args) => advise::advise(args),
            Command::Probe(args) => probe::probe(args),
            Command::Collect(args) => collect::collect(args),
            Command::Knobs => knobs::knobs(),
            Command::Train(args) => train::train(args),
            Command::Infer(args) => infer::infer(args),
        }
    }
}

/// Parses the command line, runs the command and turns its error into one line on
/// stderr and its exit code: the one place where a command's failure is printed.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Gui(gui::GuiArgs::default()));
    let name = command.name();
    match command.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("{name}: {}", output::escaped(&error.to_string()));
            error.exit_code()
        }
    }
}
