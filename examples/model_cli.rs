// TEMPORARY driver for the model CLI until main.rs wires `train` and `infer` (to be deleted).
use clap::{Parser, Subcommand};
use gracetrace::workload::model::{InferArgs, TrainArgs, infer_command, train_command};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Train(TrainArgs),
    Infer(InferArgs),
}

fn main() -> std::process::ExitCode {
    match Cli::parse().command {
        Command::Train(args) => train_command(args),
        Command::Infer(args) => infer_command(args),
    }
}
