//! `gracetrace collect`: the collector on its own, so that a real application (Python or
//! Rust) can export to it, over OTLP/HTTP or OTLP/gRPC, and see the same counts and faults
//! the simulator uses. Its flags share the bounds of the `collector.*` knobs.

use std::net::SocketAddr;
use std::process::ExitCode;

use super::CliError;
use super::signals::StopSignals;
use crate::collector::{
    Collector, CollectorConfig, DEFAULT_RECENT_TRACES, FORWARD_DRAIN, Faults, Limits,
};
use crate::config::knobs::{self, Invalid};
use crate::config::{
    DEFAULT_BODY_READ_TIMEOUT_MS, DEFAULT_HEADER_READ_TIMEOUT_MS, DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_INFLIGHT_BODY_BYTES, DEFAULT_MAX_PER_SPAN,
    DEFAULT_MAX_STORED_BYTES, FaultError,
};
/// Run an OTLP collector (HTTP, and gRPC with --grpc-listen) that counts spans exactly and
/// injects faults.
///
/// Each fault and limit flag is checked with the bounds of its scenario knob
/// (`collector.*`), and its help shows them, so `collect` and a scenario accept the same
/// values. Numbers are read signed, so that a negative one reaches that check and its
/// message instead of the argument parser's "unexpected argument".
#[derive(Clone, Debug, clap::Args)]
pub struct CollectArgs {
    /// Address to listen on (OTLP/HTTP's usual port is 4318).
    #[arg(long, default_value = "127.0.0.1:4318")]
    pub listen: SocketAddr,
    /// Also take OTLP/gRPC (HTTP/2 in plaintext, as an insecure gRPC channel speaks it) on
    /// this address (OTLP/gRPC's usual port is 4317). Counted, limited and faulted as
    /// OTLP/HTTP is.
    #[arg(long, value_name = "ADDR")]
    pub grpc_listen: Option<SocketAddr>,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, help = flag_help("--latency-ms",
        "Latency added before every answer, in milliseconds"))]
    pub latency_ms: i64,
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, help = flag_help("--jitter-ms",
        "Extra random latency, uniform in 0..=jitter, in milliseconds"))]
    pub jitter_ms: i64,
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true, help = flag_help("--error-rate",
        "Fraction of requests answered with --error-status"))]
    pub error_rate: f64,
    #[arg(long, default_value_t = 503, allow_negative_numbers = true, help = flag_help("--error-status",
        "Status of injected errors"))]
    pub error_status: i64,
    #[arg(long, allow_negative_numbers = true, help = flag_help("--retry-after-s",
        "Retry-After seconds sent with injected 429 and 503 answers"))]
    pub retry_after_s: Option<i64>,
    /// Start in an outage: connections are refused.
    #[arg(long)]
    pub outage: bool,
    /// Accept requests and never answer them.
    #[arg(long)]
    pub black_hole: bool,
    #[arg(long, allow_negative_numbers = true, help = flag_help("--ingest-limit",
        "Spans per second accepted before answering 429"))]
    pub ingest_limit: Option<i64>,
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES as i64, allow_negative_numbers = true,
        help = flag_help("--max-body-bytes",
        "Largest request body, on the wire and after gunzip, in bytes"))]
    pub max_body_bytes: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_STORED_BYTES as i64, allow_negative_numbers = true,
        help = flag_help("--max-stored-bytes", "Bytes the recent-trace store keeps"))]
    pub max_stored_bytes: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_PER_SPAN as i64, allow_negative_numbers = true,
        help = flag_help("--max-attributes-per-span", "Attributes stored per span"))]
    pub max_attributes_per_span: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_PER_SPAN as i64, allow_negative_numbers = true,
        help = flag_help("--max-events-per-span", "Events stored per span"))]
    pub max_events_per_span: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_PER_SPAN as i64, allow_negative_numbers = true,
        help = flag_help("--max-links-per-span", "Links stored per span"))]
    pub max_links_per_span: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS as i64, allow_negative_numbers = true,
        help = flag_help("--max-connections", "Connections open at once"))]
    pub max_connections: i64,
    #[arg(long, default_value_t = DEFAULT_HEADER_READ_TIMEOUT_MS as i64,
        allow_negative_numbers = true, help = flag_help("--header-read-timeout-ms",
        "Time to send a request's headers, or to sit idle, in milliseconds"))]
    pub header_read_timeout_ms: i64,
    #[arg(long, default_value_t = DEFAULT_BODY_READ_TIMEOUT_MS as i64,
        allow_negative_numbers = true, help = flag_help("--body-read-timeout-ms",
        "Time to send a request's body once its headers have arrived, in milliseconds"))]
    pub body_read_timeout_ms: i64,
    #[arg(long, default_value_t = DEFAULT_MAX_INFLIGHT_BODY_BYTES as i64,
        allow_negative_numbers = true, help = flag_help("--max-inflight-body-bytes",
        "Bytes of all request bodies held at once; past it, 503"))]
    pub max_inflight_body_bytes: i64,
    /// Pass every accepted batch on to this OTLP/HTTP backend (`http://host:port`, which
    /// gets /v1/traces, or a full URL); what it refuses or never answers is counted apart
    /// (`forward_*` in /stats). Empty: off.
    #[arg(long, value_name = "URL")]
    pub forward: Option<String>,
    /// HTTP headers sent with every forwarded batch, `name=value,name2=value2`,
    /// percent-encoded (`collector.forward_headers`), e.g. `x-honeycomb-team=KEY`. The
    /// values are secrets: printed nowhere, /stats shows no header.
    #[arg(long, value_name = "NAME=VALUE,...")]
    pub forward_headers: Option<String>,
    /// A PEM file of CA certificates trusted for an https --forward, besides the system's
    /// roots (`collector.forward_ca_file`).
    #[arg(long, value_name = "FILE")]
    pub forward_ca_file: Option<String>,
}

/// Each flag and the knob whose bounds it shares.
const FLAGS: &[(&str, &str)] = &[
    ("--latency-ms", "collector.latency_ms"),
    ("--jitter-ms", "collector.jitter_ms"),
    ("--error-rate", "collector.error_rate"),
    ("--error-status", "collector.error_status"),
    ("--retry-after-s", "collector.retry_after_s"),
    ("--ingest-limit", "collector.ingest_limit_spans_per_s"),
    ("--max-body-bytes", "collector.max_body_bytes"),
    ("--max-stored-bytes", "collector.max_stored_bytes"),
    (
        "--max-attributes-per-span",
        "collector.max_attributes_per_span",
    ),
    ("--max-events-per-span", "collector.max_events_per_span"),
    ("--max-links-per-span", "collector.max_links_per_span"),
    ("--max-connections", "collector.max_connections"),
    (
        "--header-read-timeout-ms",
        "collector.header_read_timeout_ms",
    ),
    ("--body-read-timeout-ms", "collector.body_read_timeout_ms"),
    (
        "--max-inflight-body-bytes",
        "collector.max_inflight_body_bytes",
    ),
];

/// The flag that sets a fault knob (`collector.error_rate` -> `--error-rate`).
pub fn flag_for(key: &str) -> Option<&'static str> {
    FLAGS.iter().find(|(_, k)| *k == key).map(|(flag, _)| *flag)
}

/// The range of a flag's knob, in words.
fn flag_range(flag: &str) -> Option<String> {
    FLAGS
        .iter()
        .find(|(f, _)| *f == flag)
        .and_then(|(_, key)| knobs::find(key))
        .map(|knob| knob.bounds.value_range())
}

/// A flag's `--help` line: what it does, then its knob's range.
fn flag_help(flag: &str, what: &str) -> String {
    match flag_range(flag) {
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

/// A signed flag value as the unsigned number its knob takes; a negative one is refused
/// with the knob's range.
fn unsigned(flag: &'static str, value: i64) -> Result<u64, FlagError> {
    u64::try_from(value).map_err(|_| FlagError {
        flag,
        value: value.to_string(),
        invalid: Invalid {
            expected: flag_range(flag).unwrap_or_else(|| "a whole number".to_owned()),
        },
    })
}

impl CollectArgs {
    /// The faults these flags ask for, each checked with its knob's bounds; the error
    /// names the flag (not the internal field), because the flag is what the user typed.
    pub fn faults(&self) -> Result<Faults, FlagError> {
        let status = unsigned("--error-status", self.error_status)?;
        let faults = Faults {
            latency_ms: unsigned("--latency-ms", self.latency_ms)?,
            jitter_ms: unsigned("--jitter-ms", self.jitter_ms)?,
            error_rate: self.error_rate,
            // Out of u16 is out of 400..=599 too: saturate and let `validate` say so.
            error_status: u16::try_from(status).unwrap_or(u16::MAX),
            retry_after_s: self
                .retry_after_s
                .map(|v| unsigned("--retry-after-s", v))
                .transpose()?,
            outage: self.outage,
            black_hole: self.black_hole,
            ingest_limit_spans_per_s: self
                .ingest_limit
                .map(|v| unsigned("--ingest-limit", v))
                .transpose()?,
        };
        faults.validate().map_err(|e| match e.key {
            // Report the status as typed, not saturated.
            "collector.error_status" => FlagError {
                value: self.error_status.to_string(),
                ..FlagError::from(e)
            },
            _ => FlagError::from(e),
        })?;
        Ok(faults)
    }

    /// The limits these flags ask for, each checked with its knob's bounds.
    pub fn limits(&self) -> Result<Limits, FlagError> {
        let limits = Limits {
            max_body_bytes: unsigned("--max-body-bytes", self.max_body_bytes)?,
            max_stored_bytes: unsigned("--max-stored-bytes", self.max_stored_bytes)?,
            max_attributes_per_span: unsigned(
                "--max-attributes-per-span",
                self.max_attributes_per_span,
            )?,
            max_events_per_span: unsigned("--max-events-per-span", self.max_events_per_span)?,
            max_links_per_span: unsigned("--max-links-per-span", self.max_links_per_span)?,
            max_connections: unsigned("--max-connections", self.max_connections)?,
            header_read_timeout_ms: unsigned(
                "--header-read-timeout-ms",
                self.header_read_timeout_ms,
            )?,
            body_read_timeout_ms: unsigned("--body-read-timeout-ms", self.body_read_timeout_ms)?,
            max_inflight_body_bytes: unsigned(
                "--max-inflight-body-bytes",
                self.max_inflight_body_bytes,
            )?,
        };
        limits.validate()?;
        Ok(limits)
    }

    /// `--forward` checked as `collector.forward` is; the error names the flag.
    pub fn forward(&self) -> Result<Option<String>, FlagError> {
        let Some(raw) = &self.forward else {
            return Ok(None);
        };
        knobs::forward_url(raw).map_err(|invalid| FlagError {
            flag: "--forward",
            value: raw.clone(),
            invalid,
        })
    }

    /// `--forward-headers` and `--forward-ca-file` checked as their knobs are; an error
    /// names the flag, and never quotes a header list.
    pub fn forward_extras(
        &self,
    ) -> Result<(crate::config::Headers, Option<std::path::PathBuf>), FlagError> {
        let mut scratch = crate::config::Settings::default();
        for (flag, key, raw, shown) in [
            (
                "--forward-headers",
                "collector.forward_headers",
                &self.forward_headers,
                None,
            ),
            (
                "--forward-ca-file",
                "collector.forward_ca_file",
                &self.forward_ca_file,
                Some(()),
            ),
        ] {
            let (Some(raw), Some(knob)) = (raw, knobs::find(key)) else {
                continue;
            };
            knob.set(&mut scratch, raw.trim())
                .map_err(|invalid| FlagError {
                    flag,
                    value: shown.map_or_else(|| "(hidden)".into(), |()| raw.clone()),
                    invalid,
                })?;
        }
        Ok((
            scratch.collector_forward_headers,
            scratch.collector_forward_ca_file,
        ))
    }

    /// `--grpc-listen`: any address but `--listen`'s own (the same fixed port twice could
    /// never be bound); port 0 in both picks two free ports.
    pub fn grpc_listen(&self) -> Result<Option<SocketAddr>, FlagError> {
        match self.grpc_listen {
            Some(addr) if addr == self.listen && addr.port() != 0 => Err(FlagError {
                flag: "--grpc-listen",
                value: addr.to_string(),
                invalid: Invalid {
                    expected: format!("an address other than --listen's ({})", self.listen),
                },
            }),
            other => Ok(other),
        }
    }

    /// The whole configuration these flags ask for, or the first flag out of range.
    pub fn config(&self) -> Result<CollectorConfig, FlagError> {
        let (forward_headers, forward_ca_file) = self.forward_extras()?;
        Ok(CollectorConfig {
            listen: self.listen,
            grpc_listen: self.grpc_listen()?,
            faults: self.faults()?,
            limits: self.limits()?,
            recent_traces: DEFAULT_RECENT_TRACES,
            forward: self.forward()?,
            forward_headers,
            forward_ca_file,
            ..CollectorConfig::default()
        })
    }
}

/// Runs the collector until SIGINT or SIGTERM, then prints the stats as pretty JSON on stdout
/// (so a script can keep them) and exits 0. Bad flags exit 2, like clap's own errors; a port
/// that cannot be bound exits 1.
pub fn collect(args: CollectArgs) -> Result<ExitCode, CliError> {
    let config = args.config().map_err(CliError::input)?;
    let collector = Collector::start(config).map_err(CliError::failed)?;
    // Caught from before the line that says we listen, so that a supervisor that stops
    // us as soon as it reads it gets the stats, not the default action of SIGTERM.
    let signals = match StopSignals::catch() {
        Ok(signals) => signals,
        Err(error) => {
            collector.shutdown();
            return Err(CliError::failed(SignalsError(error)));
        }
    };
    eprintln!("collector listening on {}", collector.traces_endpoint());
    if let Some(endpoint) = collector.grpc_endpoint() {
        eprintln!("collector taking OTLP/gRPC on {endpoint}");
    }
    if let Some(url) = &collector.stats().forward_url {
        eprintln!("collector forwarding accepted batches to {url}");
    }
    signals.wait();
    // Batches accepted just before the signal get a bounded chance to reach the backend,
    // so the printed counts say what became of them.
    collector.wait_forwarded(FORWARD_DRAIN);
    let stats = collector.stats();
    collector.shutdown();
    super::output::Output::Stdout.write_json(&stats)?;
    Ok(ExitCode::SUCCESS)
}

/// The signals that stop the collector could not be caught.
#[derive(Debug, thiserror::Error)]
#[error("cannot catch signals: {0}")]
pub struct SignalsError(#[source] pub std::io::Error);
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
        assert_eq!(cli.args.faults(), Ok(Faults::default()));
        assert_eq!(cli.args.limits(), Ok(Limits::default()));
        assert!(cli.args.config().is_ok());
        let cli = Cli::parse_from(["x", "--error-rate", "2"]);
        let msg = cli.args.config().unwrap_err().to_string();
        assert_eq!(
            msg,
            "--error-rate 2 is out of range: expected a number from 0 to 1"
        );
        let cli = Cli::parse_from(["x", "--ingest-limit", "0"]);
        let err = cli.args.config().unwrap_err();
        assert_eq!(err.flag, "--ingest-limit");
        assert!(err.to_string().starts_with("--ingest-limit 0 "), "{err}");
        let cli = Cli::parse_from(["x", "--max-body-bytes", "0"]);
        assert_eq!(cli.args.config().unwrap_err().flag, "--max-body-bytes");
    }

    /// Negative numbers reach the range check, which names the flag, value and range.
    #[test]
    fn negative_numbers_reach_the_range_check() {
        let cases = [
            ("--error-rate", "-0.5", "expected a number from 0 to 1"),
            (
                "--latency-ms",
                "-1",
                "expected a whole number from 0 to 600000",
            ),
            (
                "--error-status",
                "-503",
                "expected a whole number from 400 to 599",
            ),
            (
                "--error-status",
                "70000",
                "expected a whole number from 400 to 599",
            ),
            (
                "--max-connections",
                "-1",
                "expected a whole number from 1 to 1000000",
            ),
            (
                "--max-body-bytes",
                "-1",
                "expected a whole number from 1 to 1073741824",
            ),
            (
                "--header-read-timeout-ms",
                "0",
                "expected a whole number from 1 to 600000",
            ),
        ];
        for (flag, value, expected) in cases {
            let cli = Cli::try_parse_from(["x", flag, value]).unwrap_or_else(|e| panic!("{e}"));
            let msg = cli.args.config().unwrap_err().to_string();
            assert_eq!(msg, format!("{flag} {value} is out of range: {expected}"));
        }
    }

    /// `--forward`: off by default, an http URL with host and port (a bare one gets
    /// /v1/traces), anything else refused naming the flag.
    #[test]
    fn forward_flag_is_checked_as_its_knob() {
        let cli = Cli::parse_from(["x"]);
        assert_eq!(cli.args.config().unwrap().forward, None);
        let cli = Cli::parse_from(["x", "--forward", "http://127.0.0.1:4318"]);
        assert_eq!(
            cli.args.config().unwrap().forward.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let cli = Cli::parse_from(["x", "--forward", "http://h:9/custom/path"]);
        assert_eq!(
            cli.args.forward().unwrap().as_deref(),
            Some("http://h:9/custom/path")
        );
        let cli = Cli::parse_from(["x", "--forward", "https://h:1"]);
        assert_eq!(
            cli.args.forward().unwrap().as_deref(),
            Some("https://h:1/v1/traces")
        );
        for bad in [
            "https://",
            "h:4318",
            "http://h:0",
            "http://h:65536",
            "http://:80",
            "embedded",
        ] {
            let cli = Cli::parse_from(["x", "--forward", bad]);
            let err = cli.args.config().unwrap_err();
            assert_eq!(err.flag, "--forward", "{bad}");
            assert!(
                err.to_string().starts_with(&format!("--forward {bad} ")),
                "{err}"
            );
        }
    }

    /// The flags accept what the scenario knobs accept, no more (they once disagreed).
    #[test]
    fn flags_share_the_scenario_bounds() {
        let cli = Cli::parse_from(["x", "--retry-after-s", "3600"]);
        assert!(cli.args.config().is_ok());
        let cli = Cli::parse_from(["x", "--retry-after-s", "7200"]);
        let msg = cli.args.config().unwrap_err().to_string();
        assert_eq!(
            msg,
            "--retry-after-s 7200 is out of range: expected a whole number from 0 to 3600"
        );
        let cli = Cli::parse_from(["x", "--ingest-limit", "1000000000"]);
        assert!(cli.args.config().is_err());
        for (flag, key) in FLAGS {
            assert!(knobs::find(key).is_some(), "{flag}: no knob {key}");
            assert!(flag_help(flag, "x").starts_with("x (a "), "{flag}");
        }
    }
}
