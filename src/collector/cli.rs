//! `gracetrace collect`: the collector on its own, so that a real application (Python or Rust)
//! can export to it and see the same counts and faults the simulator uses.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::{Collector, CollectorConfig, DEFAULT_MAX_BODY_BYTES, DEFAULT_RECENT_TRACES, Faults};

/// Run an OTLP/HTTP collector that counts spans exactly and injects faults.
#[derive(Clone, Debug, clap::Args)]
pub struct CollectArgs {
    /// Address to listen on (OTLP/HTTP's usual port is 4318).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    /// Latency added before every answer, in milliseconds (0..=600000).
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Extra random latency, uniform in 0..=jitter, in milliseconds (0..=600000).
    #[arg(long, default_value_t = 0)]
    pub jitter_ms: u64,
    /// Fraction of requests answered with --error-status (0.0..=1.0).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Status of injected errors (400..=599).
    #[arg(long, default_value_t = 503)]
    pub error_status: u16,
    /// Retry-After seconds sent with injected 429 and 503 answers (0..=86400).
    #[arg(long)]
    pub retry_after_s: Option<u64>,
    /// Start in an outage: connections are refused.
    #[arg(long)]
    pub outage: bool,
    /// Accept requests and never answer them.
    #[arg(long)]
    pub black_hole: bool,
    /// Spans per second accepted before answering 429 (1..=1000000000).
    #[arg(long)]
    pub ingest_limit: Option<u64>,
    /// Largest request body, on the wire and after gunzip, in bytes (1..).
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,
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
    pub fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("--max-body-bytes 0 is out of range (allowed 1..)".into());
        }
        self.faults().validate().map_err(|msg| flag_message(&msg))
    }
}

/// Rewrites "field = value is ..." from `Faults::validate` into "--flag value is ...".
fn flag_message(msg: &str) -> String {
    let Some((field, rest)) = msg.split_once(" = ") else {
        return msg.to_owned();
    };
    let flag = match field {
        "latency_ms" => "--latency-ms",
        "jitter_ms" => "--jitter-ms",
        "error_rate" => "--error-rate",
        "error_status" => "--error-status",
        "retry_after_s" => "--retry-after-s",
        "ingest_limit_spans_per_s" => "--ingest-limit",
        _ => return msg.to_owned(),
    };
    format!("{flag} {rest}")
}

/// Runs the collector until SIGINT or SIGTERM, then prints the stats as pretty JSON on stdout
/// (so a script can keep them) and exits 0. Bad flags exit 2, like clap's own errors; a port
/// that cannot be bound exits 1.
pub fn run_collect(args: CollectArgs) -> ExitCode {
    if let Err(msg) = args.validate() {
        eprintln!("gracetrace collect: {msg}");
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
        let msg = cli.args.validate().unwrap_err();
        assert!(msg.starts_with("--error-rate 2 "), "{msg}");
        assert!(msg.contains("0.0..=1.0"), "{msg}");
        let cli = Cli::parse_from(["x", "--ingest-limit", "0"]);
        assert!(
            cli.args
                .validate()
                .unwrap_err()
                .starts_with("--ingest-limit 0")
        );
    }
}
