//! `gracetrace collect`: the collector on its own, so that a real application (Python or Rust)
//! can export to it and see the same counts and faults the simulator uses.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::{Collector, CollectorConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_RECENT_TRACES, Faults};
use crate::config::FaultError;
use crate::config::knobs::{self, Invalid};

/// Run an OTLP/HTTP collector that counts spans exactly and injects faults.
///
/// Each fault flag is checked with the bounds of its scenario knob (`collector.*`), and its
/// help shows them, so `collect` and a scenario accept the same values.
#[derive(Clone, Debug, clap::Args)]
pub struct CollectArgs {
    /// Address to listen on (OTLP/HTTP's usual port is 4318).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    #[arg(long, default_value_t = 0, help = flag_help("--latency-ms",
        "Latency added before every answer, in milliseconds"))]
    pub latency_ms: u64,
    #[arg(long, default_value_t = 0, help = flag_help("--jitter-ms",
        "Extra random latency, uniform in 0..=jitter, in milliseconds"))]
    pub jitter_ms: u64,
    #[arg(long, default_value_t = 0.0, help = flag_help("--error-rate",
        "Fraction of requests answered with --error-status"))]
    pub error_rate: f64,
    #[arg(long, default_value_t = 503, help = flag_help("--error-status",
        "Status of injected errors"))]
    pub error_status: u16,
    #[arg(long, help = flag_help("--retry-after-s",
        "Retry-After seconds sent with injected 429 and 503 answers"))]
    pub retry_after_s: Option<u64>,
    /// Start in an outage: connections are refused.
    #[arg(long)]
    pub outage: bool,
    /// Accept requests and never answer them.
    #[arg(long)]
    pub black_hole: bool,
    #[arg(long, help = flag_help("--ingest-limit",
        "Spans per second accepted before answering 429"))]
    pub ingest_limit: Option<u64>,
    /// Largest request body, on the wire and after gunzip, in bytes (1..).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
}

/// Each fault flag and the knob whose bounds it shares.
const FLAGS: &[(&str, &str)] = &[
    ("--latency-ms", "collector.latency_ms"),
    ("--jitter-ms", "collector.jitter_ms"),
    ("--error-rate", "collector.error_rate"),
    ("--error-status", "collector.error_status"),
    ("--retry-after-s", "collector.retry_after_s"),
    ("--ingest-limit", "collector.ingest_limit_spans_per_s"),
];

/// The flag that sets a fault knob (`collector.error_rate` -> `--error-rate`).
pub fn flag_for(key: &str) -> Option<&'static str> {
    FLAGS.iter().find(|(_, k)| *k == key).map(|(flag, _)| *flag)
}

/// A flag's `--help` line: what it does, then its knob's range.
fn flag_help(flag: &str, what: &str) -> String {
    let range = FLAGS
        .iter()
        .find(|(f, _)| *f == flag)
        .and_then(|(_, key)| knobs::find(key))
        .map(|knob| knob.bounds.value_range());
    match range {
        Some(range) => format!("{what} ({range})"),
        None => what.to_owned(),
    }
}

/// A flag out of range: names the flag as typed, the value and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{flag} {value} is out of range: {invalid}")]
pub struct FlagError {
    pub flag: &'static str,
    pub value: String,
    pub invalid: Invalid,
}

impl From<FaultError> for FlagError {
    fn from(fault: FaultError) -> Self {
        FlagError {
            flag: flag_for(fault.key).unwrap_or(fault.key),
            value: fault.value,
            invalid: fault.invalid,
        }
    }
}

impl CollectArgs {
    /// The faults these flags ask for.
    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            error_rate: self.error_rate,
            error_status: self.error_status,
            retry_after_s: self.retry_after_s,
            outage: self.outage,
            black_hole: self.black_hole,
            ingest_limit_spans_per_s: self.ingest_limit,
        }
    }

    /// Checks the flags, naming the flag (not the internal field) in the message, because
    /// the flag is what the user typed.
    pub fn validate(&self) -> Result<(), FlagError> {
        if self.max_body_bytes == 0 {
            return Err(FlagError {
                flag: "--max-body-bytes",
                value: self.max_body_bytes.to_string(),
                invalid: Invalid {
                    expected: "a whole number of at least 1".into(),
                },
            });
        }
        Ok(self.faults().validate()?)
    }
}

/// Runs the collector until SIGINT or SIGTERM, then prints the stats as pretty JSON on stdout
/// (so a script can keep them) and exits 0. Bad flags exit 2, like clap's own errors; a port
/// that cannot be bound exits 1.
pub fn run_collect(args: CollectArgs) -> ExitCode {
    if let Err(error) = args.validate() {
        eprintln!("gracetrace collect: {error}");
        return ExitCode::from(2);
    }
    let config = CollectorConfig {
        listen: args.listen,
        faults: args.faults(),
        max_body_bytes: args.max_body_bytes,
        recent_traces: DEFAULT_RECENT_TRACES,
    };
    let collector = match Collector::start(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gracetrace collect: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("collector listening on {}", collector.traces_endpoint());
    if let Err(e) = wait_for_stop_signal() {
        eprintln!("gracetrace collect: cannot wait for signals: {e}");
        collector.shutdown();
        return ExitCode::FAILURE;
    }
    let stats = collector.stats();
    collector.shutdown();
    match serde_json::to_string_pretty(&stats) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gracetrace collect: cannot print stats: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks until SIGINT or (on Unix) SIGTERM, the two ways a terminal or a supervisor stops us.
fn wait_for_stop_signal() -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    rt.block_on(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut term = signal(SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CollectArgs,
    }

    #[test]
    fn defaults_and_flag_names_in_errors() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.args.listen, "127.0.0.1:4318".parse().unwrap());
        assert_eq!(cli.args.faults(), Faults::default());
        assert_eq!(cli.args.validate(), Ok(()));
        let cli = Cli::parse_from(["x", "--error-rate", "2"]);
        let msg = cli.args.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "--error-rate 2 is out of range: expected a number from 0 to 1"
        );
        let cli = Cli::parse_from(["x", "--ingest-limit", "0"]);
        let err = cli.args.validate().unwrap_err();
        assert_eq!(err.flag, "--ingest-limit");
        assert!(err.to_string().starts_with("--ingest-limit 0 "), "{err}");
        let cli = Cli::parse_from(["x", "--max-body-bytes", "0"]);
        assert_eq!(cli.args.validate().unwrap_err().flag, "--max-body-bytes");
    }

    /// The flags accept what the scenario knobs accept, no more (they once disagreed).
    #[test]
    fn flags_share_the_scenario_bounds() {
        let cli = Cli::parse_from(["x", "--retry-after-s", "3600"]);
        assert_eq!(cli.args.validate(), Ok(()));
        let cli = Cli::parse_from(["x", "--retry-after-s", "7200"]);
        let msg = cli.args.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "--retry-after-s 7200 is out of range: expected a whole number from 0 to 3600"
        );
        let cli = Cli::parse_from(["x", "--ingest-limit", "1000000000"]);
        assert!(cli.args.validate().is_err());
        for (flag, key) in FLAGS {
            assert!(knobs::find(key).is_some(), "{flag}: no knob {key}");
            assert!(flag_help(flag, "x").starts_with("x (a "), "{flag}");
        }
    }
}
