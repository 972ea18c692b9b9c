//! The knob table: one row per setting, with its TOML key, its environment variable, a
//! line of help, and its bounds, which parse and range-check raw text and render the range.
//!
//! The UI (tooltips), the README table, `--set`, the environment and scenario files all
//! read this one table, so a range is written down exactly once.

use super::{
    DeviceChoice, HandleExit, MAX_REPLICAS, MaxUnavailable, Platform, Rollout, Semantics, Settings,
    StopSignal, Waiting, WorkloadKind,
};

/// Largest injected latency or jitter: ten minutes is longer than any exporter timeout, so
/// nothing useful lies beyond it, and the bound keeps a typo from parking requests for days.
pub const MAX_LATENCY_MS: u64 = 600_000;
/// Largest `Retry-After`: one hour. Exporters cap their own waits far below this.
pub const MAX_RETRY_AFTER_S: u64 = 3_600;
/// Largest ingestion limit: far above what one process can export, so it never binds by accident.
pub const MAX_INGEST_LIMIT: u64 = 100_000_000;

pub struct Knob {
    /// Scenario-TOML key, `section.name`; also the `--set` key.
    pub key: &'static str,
    /// The environment variable that sets it, if any (see `env.rs` for the special ones).
    pub env: Option<&'static str>,
    pub help: &'static str,
    /// What it accepts, and where a parsed value goes: the one place its range is written.
    pub bounds: Bounds,
    pub get: fn(&Settings) -> String,
}

impl Knob {
    /// The allowed values, in words, for `gracetrace knobs`, tooltips and errors.
    pub fn range(&self) -> String {
        self.bounds.range()
    }

    /// Parses and range-checks `raw` with the knob's bounds, then stores it.
    pub fn set(&self, settings: &mut Settings, raw: &str) -> Result<(), Invalid> {
        self.bounds.apply(settings, raw)
    }

    /// Checks a value as its source typed it and stores it (see [`Value`]).
    pub fn set_value(&self, settings: &mut Settings, value: Value<'_>) -> Result<(), Invalid> {
        self.bounds.apply_value(settings, value)
    }
}

/// A value as its source typed it. The environment and `--set` give text, which each knob
/// parses; a TOML file gives typed values, which must already be of the knob's type: a
/// string is never read as a number or a boolean, and an integer means what TOML says
/// (`0x800` is 2048).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    /// Text to parse (environment, `--set`), already trimmed.
    Raw(&'a str),
    /// A TOML string: only text, choice and endpoint knobs take it.
    Str(&'a str),
    /// A TOML integer, of any radix, already converted. `i128` holds every `u64` (the
    /// seed's range) and every negative `i64`.
    Int(i128),
    /// A TOML float.
    Float(f64),
    /// A TOML boolean.
    Bool(bool),
}

impl Value<'_> {
    /// The name of the TOML type, for "expected ..., not a string".
    fn type_name(&self) -> &'static str {
        match self {
            Value::Raw(_) | Value::Str(_) => "a string",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Bool(_) => "a boolean",
        }
    }
}

/// Why a value was refused: what would have been accepted, in words.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}")]
pub struct Invalid {
    /// The allowed values, as [`Bounds::range`] renders them.
    pub expected: String,
}

/// What a knob accepts, with the setter that stores a value once it is parsed. Every bound
/// is written here once: `apply` checks with it, `range` renders it, and
/// [`super::Faults::validate`] and `gracetrace collect` check typed values with it.
pub enum Bounds {
    /// Any text.
    Text(fn(&mut Settings, &str)),
    /// Any text but the empty string.
    NonEmpty(fn(&mut Settings, &str)),
    /// `true` or `false`, in any case.
    Bool(fn(&mut Settings, bool)),
    /// A whole number in `min..=max`; `_` separators are allowed, as in TOML.
    Int {
        min: u64,
        max: u64,
        set: fn(&mut Settings, u64),
    },
    /// A number in `min..=max`.
    Float {
        min: f64,
        max: f64,
        set: fn(&mut Settings, f64),
    },
    /// `none` (which means `means`) for no value, or a whole number in `min..=max`.
    OptionalInt {
        none: i64,
        means: &'static str,
        min: u64,
        max: u64,
        set: fn(&mut Settings, Option<u64>),
    },
    /// `none` (which means `means`) for no value, or a number in `min..=max`.
    OptionalFloat {
        none: f64,
        means: &'static str,
        min: f64,
        max: f64,
        set: fn(&mut Settings, Option<f64>),
    },
    /// One of `names()`, in any case; the setter gets the index of the one given.
    Choice {
        names: fn() -> Vec<&'static str>,
        set: fn(&mut Settings, usize),
    },
    /// `embedded` (or nothing) for the embedded collector, or an `http://` URL.
    Endpoint(fn(&mut Settings, Option<String>)),
    /// Nothing (off), or an `http://` URL with a host and a valid port (see [`forward_url`]).
    Url(fn(&mut Settings, Option<String>)),
    /// `name=value,...` HTTP headers (see [`super::headers`]); the values are secrets.
    Headers(fn(&mut Settings, super::Headers)),
    /// Nothing, or a readable PEM file with at least one CA certificate (see
    /// [`super::tls`]).
    CaFile(fn(&mut Settings, Option<std::path::PathBuf>)),
    /// A whole number in `1..=max`, or a share `P%` with `P` above 0 and at most 100.
    CountOrShare {
        max: u64,
        set: fn(&mut Settings, MaxUnavailable),
    },
}

impl Bounds {
    /// The allowed values, in words ("a number from 0 to 1").
    pub fn range(&self) -> String {
        match *self {
            Bounds::Text(_) => "any text".into(),
            Bounds::NonEmpty(_) => "non-empty text".into(),
            Bounds::Bool(_) => BOOL_RANGE.into(),
            Bounds::OptionalInt { none, means, .. } => {
                format!("{none} ({means}) or {}", self.value_range())
            }
            Bounds::OptionalFloat { none, means, .. } => {
                format!("{none} ({means}) or {}", self.value_range())
            }
            Bounds::Choice { names, .. } => one_of(&names()),
            Bounds::Endpoint(_) => "an http:// or https:// URL with a host and a port from 1 \
                                    to 65535, ending in /v1/traces, or \"embedded\""
                .into(),
            Bounds::Url(_) => URL_RANGE.into(),
            Bounds::Headers(_) => "nothing, or name=value,name2=value2 (percent-encoded)".into(),
            Bounds::CaFile(_) => "nothing, or a readable PEM file of CA certificates".into(),
            Bounds::CountOrShare { max, .. } => {
                format!("a whole number from 1 to {max}, or a share from above 0% to 100%")
            }
            Bounds::Int { .. } | Bounds::Float { .. } => self.value_range(),
        }
    }

    /// The numeric bounds of a number knob, as `(min, max)`; `None` for the others.
    /// The window's sliders span exactly this, so any value the knob accepts can be
    /// shown and set there.
    pub fn numeric(&self) -> Option<(f64, f64)> {
        match *self {
            Bounds::Int { min, max, .. } | Bounds::OptionalInt { min, max, .. } => {
                Some((min as f64, max as f64))
            }
            Bounds::Float { min, max, .. } | Bounds::OptionalFloat { min, max, .. } => {
                Some((min, max))
            }
            _ => None,
        }
    }

    /// The range of a present value, without the text that means "none": what a typed
    /// `Option` field or a command-line flag is checked against.
    pub fn value_range(&self) -> String {
        match *self {
            Bounds::Int { min, max, .. } | Bounds::OptionalInt { min, max, .. } => {
                format!("a whole number from {min} to {max}")
            }
            Bounds::Float { min, max, .. } | Bounds::OptionalFloat { min, max, .. } => {
                format!("a number from {min} to {max}")
            }
            _ => self.range(),
        }
    }

    /// Checks a whole number already parsed (a collector fault, a flag) against the bounds.
    pub fn check_int(&self, value: u64) -> Result<(), Invalid> {
        match *self {
            Bounds::Int { min, max, .. } | Bounds::OptionalInt { min, max, .. }
                if (min..=max).contains(&value) =>
            {
                Ok(())
            }
            _ => Err(self.invalid_value()),
        }
    }

    /// Checks a number already parsed against the bounds; NaN is out of every range.
    pub fn check_float(&self, value: f64) -> Result<(), Invalid> {
        match *self {
            Bounds::Float { min, max, .. } | Bounds::OptionalFloat { min, max, .. }
                if (min..=max).contains(&value) =>
            {
                Ok(())
            }
            _ => Err(self.invalid_value()),
        }
    }

    fn invalid(&self) -> Invalid {
        Invalid {
            expected: self.range(),
        }
    }

    fn invalid_value(&self) -> Invalid {
        Invalid {
            expected: self.value_range(),
        }
    }

    /// Parses `raw` (already trimmed), checks it and hands it to the setter.
    fn apply(&self, s: &mut Settings, raw: &str) -> Result<(), Invalid> {
        match *self {
            Bounds::Text(set) => set(s, raw),
            Bounds::NonEmpty(set) if !raw.is_empty() => set(s, raw),
            Bounds::NonEmpty(_) => return Err(self.invalid()),
            Bounds::Bool(set) => set(s, boolean(raw)?),
            Bounds::Int { set, .. } => set(s, self.int(raw)?),
            Bounds::Float { set, .. } => set(s, self.float(raw)?),
            Bounds::OptionalInt { none, set, .. } => match whole_number(raw) {
                Some(n) if n == i128::from(none) => set(s, None),
                _ => set(s, Some(self.int(raw)?)),
            },
            Bounds::OptionalFloat { none, set, .. } => match number::<f64>(raw) {
                Some(n) if n == none => set(s, None),
                _ => set(s, Some(self.float(raw)?)),
            },
            Bounds::Choice { names, set } => {
                let wanted = raw.to_ascii_lowercase();
                let index = names().iter().position(|n| *n == wanted);
                set(s, index.ok_or_else(|| self.invalid())?);
            }
            Bounds::Endpoint(set) => set(s, endpoint(raw).ok_or_else(|| self.invalid())?),
            Bounds::Url(set) => set(s, forward_url(raw)?),
            Bounds::Headers(set) => set(
                s,
                super::Headers::parse(raw).map_err(|e| Invalid {
                    expected: format!("{}: {e}", self.range()),
                })?,
            ),
            Bounds::CaFile(set) => set(s, ca_file(raw)?),
            Bounds::CountOrShare { set, .. } => set(s, self.count_or_share(raw)?),
        }
        Ok(())
    }

    /// `5` or `25%`, checked against the bounds.
    fn count_or_share(&self, raw: &str) -> Result<MaxUnavailable, Invalid> {
        let Bounds::CountOrShare { max, .. } = *self else {
            return Err(self.invalid());
        };
        let value = match raw.strip_suffix('%') {
            Some(percent) => number::<f64>(percent.trim())
                .filter(|p| *p > 0.0 && *p <= 100.0)
                .map(MaxUnavailable::Share),
            None => whole_number(raw)
                .and_then(|n| u64::try_from(n).ok())
                .filter(|n| (1..=max).contains(n))
                .map(MaxUnavailable::Count),
        };
        value.ok_or_else(|| self.invalid())
    }

    /// Checks a typed value (see [`Value`]) and hands it to the setter. A value of the
    /// wrong type is refused with the range and the type that was given.
    fn apply_value(&self, s: &mut Settings, value: Value<'_>) -> Result<(), Invalid> {
        let wrong_type = || Invalid {
            expected: format!("{}, not {}", self.range(), value.type_name()),
        };
        match (self, value) {
            (_, Value::Raw(raw)) => return self.apply(s, raw),
            (
                Bounds::Text(_)
                | Bounds::NonEmpty(_)
                | Bounds::Choice { .. }
                | Bounds::Endpoint(_)
                | Bounds::Url(_)
                | Bounds::Headers(_)
                | Bounds::CaFile(_)
                | Bounds::CountOrShare { .. },
                Value::Str(text),
            ) => return self.apply(s, text),
            (Bounds::CountOrShare { set, .. }, Value::Int(n)) => {
                set(s, self.count_or_share(&n.to_string())?)
            }
            (Bounds::Bool(set), Value::Bool(b)) => set(s, b),
            (Bounds::Int { set, .. }, Value::Int(n)) => set(s, self.whole(n)?),
            (Bounds::OptionalInt { none, set, .. }, Value::Int(n)) => set(
                s,
                (n != i128::from(*none))
                    .then(|| self.whole(n))
                    .transpose()?,
            ),
            (Bounds::Float { set, .. }, Value::Int(_) | Value::Float(_)) => {
                set(s, self.checked_float(value)?)
            }
            (Bounds::OptionalFloat { none, set, .. }, Value::Int(_) | Value::Float(_)) => {
                let v = self.checked_float(value)?;
                set(s, (v != *none).then_some(v))
            }
            _ => return Err(wrong_type()),
        }
        Ok(())
    }

    /// A TOML integer in the knob's range (a negative one is out of every whole range).
    fn whole(&self, n: i128) -> Result<u64, Invalid> {
        let value = u64::try_from(n).map_err(|_| self.invalid())?;
        self.check_int(value).map_err(|_| self.invalid())?;
        Ok(value)
    }

    /// A TOML integer or float as a number in the knob's range; integers beyond 2^53
    /// round, which no float knob's range comes near.
    fn checked_float(&self, value: Value<'_>) -> Result<f64, Invalid> {
        let v = match value {
            Value::Int(n) => n as f64,
            Value::Float(f) => f,
            _ => return Err(self.invalid()),
        };
        if let Bounds::OptionalFloat { none, .. } = *self
            && v == none
        {
            return Ok(v);
        }
        self.check_float(v).map_err(|_| self.invalid())?;
        Ok(v)
    }

    fn int(&self, raw: &str) -> Result<u64, Invalid> {
        let value = whole_number(raw)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| self.invalid())?;
        self.check_int(value).map_err(|_| self.invalid())?;
        Ok(value)
    }

    fn float(&self, raw: &str) -> Result<f64, Invalid> {
        let value = number::<f64>(raw).ok_or_else(|| self.invalid())?;
        self.check_float(value).map_err(|_| self.invalid())?;
        Ok(value)
    }
}

pub fn find(key: &str) -> Option<&'static Knob> {
    KNOBS.iter().find(|k| k.key == key)
}

/// A number as TOML and the environment write it: `_` separators are allowed.
fn number<T: std::str::FromStr>(raw: &str) -> Option<T> {
    raw.replace('_', "").parse().ok()
}

/// A whole number as TOML writes it: decimal, or `0x`, `0o`, `0b` with no sign, so that
/// `--set batch.max_queue_size=0x800` means 2048 as the same literal in a file does.
fn whole_number(raw: &str) -> Option<i128> {
    let digits = raw.replace('_', "");
    let radix = match digits.get(..2) {
        Some("0x") => 16,
        Some("0o") => 8,
        Some("0b") => 2,
        _ => return digits.parse().ok(),
    };
    i128::from_str_radix(&digits[2..], radix)
        .ok()
        .filter(|_| !digits[2..].starts_with(['+', '-']))
}

const BOOL_RANGE: &str = "true or false";

/// "a, b or c".
fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

pub(super) fn boolean(raw: &str) -> Result<bool, Invalid> {
    match raw.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(Invalid {
            expected: BOOL_RANGE.into(),
        }),
    }
}

/// `Some(None)` for the embedded collector, `Some(Some(url))` for an `http://` or
/// `https://` URL with a host and, if given, a port from 1 to 65535; `None` for anything else, so that a URL the
/// exporter could never reach (`http://`, port 99999) is refused where it was written
/// instead of failing every export of the run.
fn endpoint(raw: &str) -> Option<Option<String>> {
    if raw.is_empty() || raw == "embedded" {
        return Some(None);
    }
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 literal: `[::1]:4318`.
        Some(v6) => {
            let (host, after) = v6.split_once(']')?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':')?),
            };
            (host, port)
        }
        None => match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '@');
    let port_ok = port.is_none_or(|p| {
        p.bytes().all(|b| b.is_ascii_digit()) && matches!(p.parse::<u16>(), Ok(1..))
    });
    (host_ok && port_ok && raw.parse::<http::Uri>().is_ok()).then(|| Some(raw.to_string()))
}

const URL_RANGE: &str =
    "nothing (off) or an http:// or https:// URL with a host and a port from 1 to 65535";

/// A CA file knob's value: nothing, or a file read and parsed now, so that a path that
/// cannot be used is refused where it was written.
fn ca_file(raw: &str) -> Result<Option<std::path::PathBuf>, Invalid> {
    if raw.is_empty() {
        return Ok(None);
    }
    let path = std::path::PathBuf::from(raw);
    super::tls::read_ca_file(&path).map_err(|e| Invalid {
        expected: format!("a readable PEM file of CA certificates: {e}"),
    })?;
    Ok(Some(path))
}

/// A forwarding target (`collector.forward`, `collect --forward`): empty for none, else an
/// `http://` or `https://` URL with a host and a port in 1..=65535. A URL without a path gets OTLP's
/// `/v1/traces`, as `OTEL_EXPORTER_OTLP_ENDPOINT` does, so `http://host:4318` works.
pub fn forward_url(raw: &str) -> Result<Option<String>, Invalid> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let invalid = || Invalid {
        expected: URL_RANGE.into(),
    };
    // `endpoint` reads "embedded" as "no URL"; here it is no URL at all.
    let url = endpoint(raw).flatten().ok_or_else(invalid)?;
    let uri: http::Uri = url.parse().map_err(|_| invalid())?;
    Ok(Some(match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => format!("{}/v1/traces", url.trim_end_matches('/')),
        Some(_) => url,
    }))
}

/// The names of a choice, from the values' own `name()`, in the order of `all`.
macro_rules! names {
    ($all:expr) => {
        || $all.into_iter().map(|v| v.name()).collect()
    };
}

/// A path knob's value as text; nothing for none.
fn path_text(path: &Option<std::path::PathBuf>) -> String {
    path.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

const MAX_QUEUE: u64 = 10_000_000;
/// Largest request body: 1 GiB, far past any exporter's batch.
const MAX_BODY_BYTES: u64 = 1 << 30;
/// Largest budget of bodies in flight: 64 GiB, more than a desktop has.
const MAX_INFLIGHT_BODY_BYTES: u64 = 64 << 30;
/// Largest recent-trace store: 4 GiB, more than any desktop should give a waterfall.
const MAX_STORED_BYTES: u64 = 4 << 30;
/// Most attributes, events or links stored per span.
const MAX_PER_SPAN: u64 = 100_000;
/// Most connections: far above a process's usual descriptor limit, which binds first.
const MAX_CONNECTIONS: u64 = 1_000_000;
const MAX_MS: u64 = 3_600_000;
/// Longest run, burst period and shutdown time, seconds.
const MAX_S: f64 = 3600.0;
const WORKLOAD_KINDS: [WorkloadKind; 2] = [WorkloadKind::Synthetic, WorkloadKind::Model];
const DEVICES: [DeviceChoice; 3] = [DeviceChoice::Auto, DeviceChoice::Wgpu, DeviceChoice::Cpu];
const HANDLE_EXITS: [HandleExit; 2] = [HandleExit::None, HandleExit::Cancel];

pub static KNOBS: &[Knob] = &[
    Knob {
        key: "name",
        env: None,
        help: "A short name for the scenario, shown in reports.",
        bounds: Bounds::Text(|s, v| s.name = v.to_string()),
        get: |s| s.name.clone(),
    },
    Knob {
        key: "tracing.enabled",
        env: Some("ENABLE_TRACING"),
        help: "Off: no tracer provider at all, so spans are no-ops and no export thread runs.",
        bounds: Bounds::Bool(|s, v| s.tracing.enabled = v),
        get: |s| s.tracing.enabled.to_string(),
    },
    Knob {
        key: "tracing.sample_rate",
        env: Some("OTEL_SAMPLE_RATE"),
        help: "Fraction of new root spans sampled: ParentBased(TraceIdRatioBased(rate)).",
        bounds: Bounds::Float {
            min: 0.0,
            max: 1.0,
            set: |s, v| s.tracing.sample_rate = v,
        },
        get: |s| s.tracing.sample_rate.to_string(),
    },
    Knob {
        key: "tracing.semantics",
        env: Some("GRACETRACE_SEMANTICS"),
        help: "Whose batch processor and exporter to imitate: python (opentelemetry-sdk 1.41), \
               rust (opentelemetry_sdk 0.33, reimplemented), js (@opentelemetry/sdk-trace \
               2.12, reimplemented) or sdk (the stock Rust processor).",
        bounds: Bounds::Choice {
            names: names!(Semantics::ALL),
            set: |s, i| s.tracing.semantics = Semantics::ALL[i],
        },
        get: |s| s.tracing.semantics.name().into(),
    },
    Knob {
        key: "tracing.service_name",
        env: Some("OTEL_SERVICE_NAME"),
        help: "The service.name resource attribute.",
        bounds: Bounds::NonEmpty(|s, v| s.tracing.service_name = v.to_string()),
        get: |s| s.tracing.service_name.clone(),
    },
    Knob {
        key: "batch.max_queue_size",
        env: Some("OTEL_BSP_MAX_QUEUE_SIZE"),
        help: "Spans the batch processor holds in memory; beyond it spans are dropped \
               (python: the oldest, rust: the newest).",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_QUEUE,
            set: |s, v| s.batch.max_queue_size = v as usize,
        },
        get: |s| s.batch.max_queue_size.to_string(),
    },
    Knob {
        key: "batch.max_export_batch_size",
        env: Some("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        help: "Spans per HTTP request to the collector; reaching it also wakes the exporter \
               early. At most batch.max_queue_size.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_QUEUE,
            set: |s, v| s.batch.max_export_batch_size = v as usize,
        },
        get: |s| s.batch.max_export_batch_size.to_string(),
    },
    Knob {
        key: "batch.schedule_delay_ms",
        env: Some("OTEL_BSP_SCHEDULE_DELAY"),
        help: "How often the processor exports on its own, milliseconds.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_MS,
            set: |s, v| s.batch.schedule_delay_ms = v,
        },
        get: |s| s.batch.schedule_delay_ms.to_string(),
    },
    Knob {
        key: "batch.export_timeout_ms",
        env: Some("OTEL_BSP_EXPORT_TIMEOUT"),
        help: "Python's BatchProcessor never reads it and Rust's thread processor has no export \
               timeout; js stops waiting for an export after it (the export goes on).",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_MS,
            set: |s, v| s.batch.export_timeout_ms = v,
        },
        get: |s| s.batch.export_timeout_ms.to_string(),
    },
    Knob {
        key: "exporter.endpoint",
        env: Some("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        help: "Where spans are sent; \"embedded\" is the collector gracetrace runs on 127.0.0.1.",
        bounds: Bounds::Endpoint(|s, v| s.exporter.endpoint = v),
        get: |s| {
            s.exporter
                .endpoint
                .clone()
                .unwrap_or_else(|| "embedded".into())
        },
    },
    Knob {
        key: "exporter.headers",
        env: None,
        help: "HTTP headers sent with every export, name=value,name2=value2 (set by \
               OTEL_EXPORTER_OTLP_HEADERS or OTEL_EXPORTER_OTLP_TRACES_HEADERS); the values \
               are secrets, shown nowhere and left out of saved scenarios.",
        bounds: Bounds::Headers(|s, v| s.exporter.headers = v),
        get: |s| s.exporter.headers.to_spec(),
    },
    Knob {
        key: "exporter.ca_file",
        env: None,
        help: "A PEM file of CA certificates trusted for an https endpoint, besides the \
               system's roots (set by OTEL_EXPORTER_OTLP_CERTIFICATE or \
               OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE).",
        bounds: Bounds::CaFile(|s, v| s.exporter.ca_file = v),
        get: |s| path_text(&s.exporter.ca_file),
    },
    Knob {
        key: "exporter.timeout_ms",
        env: Some("OTEL_EXPORTER_OTLP_TIMEOUT"),
        help: "Export deadline: python and js spend it across all retries, rust per HTTP request.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_MS,
            set: |s, v| s.exporter.timeout_ms = v,
        },
        get: |s| s.exporter.timeout_ms.to_string(),
    },
    Knob {
        key: "workload.kind",
        env: Some("GRACETRACE_WORKLOAD"),
        help: "What serves requests: synthetic (a sleep per step, for high rates and tests) \
               or model (the glyph diffusion model, one request at a time).",
        bounds: Bounds::Choice {
            names: names!(WORKLOAD_KINDS),
            set: |s, i| s.workload.kind = WORKLOAD_KINDS[i],
        },
        get: |s| s.workload.kind.name().into(),
    },
    Knob {
        key: "workload.device",
        env: Some("GRACETRACE_DEVICE"),
        help: "Where the model runs: auto (wgpu if it finds any adapter, else the CPU \
               backend), wgpu (an error without an adapter) or cpu (burn's flex).",
        bounds: Bounds::Choice {
            names: names!(DEVICES),
            set: |s, i| s.workload.device = DEVICES[i],
        },
        get: |s| s.workload.device.name().into(),
    },
    Knob {
        key: "workload.step_events",
        env: None,
        help: "Model kind: one span event per denoising step on the inference span.",
        bounds: Bounds::Bool(|s, v| s.workload.step_events = v),
        get: |s| s.workload.step_events.to_string(),
    },
    Knob {
        key: "workload.duration_s",
        env: None,
        help: "How long traffic runs, seconds.",
        bounds: Bounds::Float {
            min: 0.1,
            max: MAX_S,
            set: |s, v| s.workload.duration_s = v,
        },
        get: |s| s.workload.duration_s.to_string(),
    },
    Knob {
        key: "workload.rate_per_s",
        env: None,
        help: "Mean request arrival rate (open-loop Poisson), requests per second.",
        bounds: Bounds::Float {
            min: 0.0,
            max: 1e6,
            set: |s, v| s.workload.rate_per_s = v,
        },
        get: |s| s.workload.rate_per_s.to_string(),
    },
    Knob {
        key: "workload.concurrency",
        env: None,
        help: "Requests the runner serves at once.",
        bounds: Bounds::Int {
            min: 1,
            max: 1024,
            set: |s, v| s.workload.concurrency = v as usize,
        },
        get: |s| s.workload.concurrency.to_string(),
    },
    Knob {
        key: "workload.max_waiting",
        env: None,
        help: "Requests allowed to wait for a free slot; more arrivals are rejected and counted.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_QUEUE,
            set: |s, v| s.workload.max_waiting = v as usize,
        },
        get: |s| s.workload.max_waiting.to_string(),
    },
    Knob {
        key: "workload.inference_ms",
        env: None,
        help: "Time spent in the inference span, milliseconds.",
        bounds: Bounds::Float {
            min: 0.0,
            max: MAX_MS as f64,
            set: |s, v| s.workload.inference_ms = v,
        },
        get: |s| s.workload.inference_ms.to_string(),
    },
    Knob {
        key: "workload.steps",
        env: None,
        help: "Denoising steps per request (num_inference_steps); cancellation is checked between steps.",
        bounds: Bounds::Int {
            min: 1,
            max: 1000,
            set: |s, v| s.workload.steps = v as usize,
        },
        get: |s| s.workload.steps.to_string(),
    },
    Knob {
        key: "workload.upload_ms",
        env: None,
        help: "Time spent in the upload span, milliseconds.",
        bounds: Bounds::Float {
            min: 0.0,
            max: MAX_MS as f64,
            set: |s, v| s.workload.upload_ms = v,
        },
        get: |s| s.workload.upload_ms.to_string(),
    },
    Knob {
        key: "workload.extra_spans",
        env: None,
        help: "Extra child spans per request beyond inference and upload.",
        bounds: Bounds::Int {
            min: 0,
            max: 10_000,
            set: |s, v| s.workload.extra_spans = v as usize,
        },
        get: |s| s.workload.extra_spans.to_string(),
    },
    Knob {
        key: "workload.flush_every_request",
        env: None,
        help: "force_flush() at the end of every request, the anti-pattern the seed warns \
               against; the request waits for its own export, so its latency shows the cost.",
        bounds: Bounds::Bool(|s, v| s.workload.flush_every_request = v),
        get: |s| s.workload.flush_every_request.to_string(),
    },
    Knob {
        key: "workload.burst_every_s",
        env: None,
        help: "Seconds between bursts; 0 turns bursts off.",
        bounds: Bounds::Float {
            min: 0.0,
            max: MAX_S,
            set: |s, v| s.workload.burst_every_s = v,
        },
        get: |s| s.workload.burst_every_s.to_string(),
    },
    Knob {
        key: "workload.burst_size",
        env: None,
        help: "Requests that arrive at once in each burst.",
        bounds: Bounds::Int {
            min: 0,
            max: 1_000_000,
            set: |s, v| s.workload.burst_size = v as usize,
        },
        get: |s| s.workload.burst_size.to_string(),
    },
    Knob {
        key: "workload.seed",
        env: None,
        help: "Seed of the arrival process and trace ids' randomness source.",
        bounds: Bounds::Int {
            min: 0,
            max: u64::MAX,
            set: |s, v| s.workload.seed = v,
        },
        get: |s| s.workload.seed.to_string(),
    },
    Knob {
        key: "collector.latency_ms",
        env: None,
        help: "Injected: added before the collector answers, milliseconds.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_LATENCY_MS,
            set: |s, v| s.collector.latency_ms = v,
        },
        get: |s| s.collector.latency_ms.to_string(),
    },
    Knob {
        key: "collector.jitter_ms",
        env: None,
        help: "Injected: uniform extra latency from 0 to this, milliseconds.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_LATENCY_MS,
            set: |s, v| s.collector.jitter_ms = v,
        },
        get: |s| s.collector.jitter_ms.to_string(),
    },
    Knob {
        key: "collector.error_rate",
        env: None,
        help: "Injected: fraction of requests answered with error_status.",
        bounds: Bounds::Float {
            min: 0.0,
            max: 1.0,
            set: |s, v| s.collector.error_rate = v,
        },
        get: |s| s.collector.error_rate.to_string(),
    },
    Knob {
        key: "collector.error_status",
        env: None,
        help: "Injected: the status of failed requests (503, 429, 500, ...).",
        bounds: Bounds::Int {
            min: 400,
            max: 599,
            set: |s, v| s.collector.error_status = v as u16,
        },
        get: |s| s.collector.error_status.to_string(),
    },
    Knob {
        key: "collector.retry_after_s",
        env: None,
        help: "Injected: Retry-After seconds on 429 and 503.",
        bounds: Bounds::OptionalInt {
            none: -1,
            means: "none",
            min: 0,
            max: MAX_RETRY_AFTER_S,
            set: |s, v| s.collector.retry_after_s = v,
        },
        get: |s| {
            s.collector
                .retry_after_s
                .map_or_else(|| "-1".into(), |r| r.to_string())
        },
    },
    Knob {
        key: "collector.outage",
        env: None,
        help: "Injected: the collector refuses connections.",
        bounds: Bounds::Bool(|s, v| s.collector.outage = v),
        get: |s| s.collector.outage.to_string(),
    },
    Knob {
        key: "collector.black_hole",
        env: None,
        help: "Injected: the collector accepts requests and never answers.",
        bounds: Bounds::Bool(|s, v| s.collector.black_hole = v),
        get: |s| s.collector.black_hole.to_string(),
    },
    Knob {
        key: "collector.ingest_limit_spans_per_s",
        env: None,
        help: "Injected: spans per second the backend ingests before answering 429.",
        bounds: Bounds::OptionalInt {
            none: 0,
            means: "no limit",
            min: 1,
            max: MAX_INGEST_LIMIT,
            set: |s, v| s.collector.ingest_limit_spans_per_s = v,
        },
        get: |s| {
            s.collector
                .ingest_limit_spans_per_s
                .unwrap_or(0)
                .to_string()
        },
    },
    Knob {
        key: "collector.max_body_bytes",
        env: None,
        help: "Largest request body the collector reads, on the wire and after gunzip; a \
               larger one is answered 413.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_BODY_BYTES,
            set: |s, v| s.collector_limits.max_body_bytes = v,
        },
        get: |s| s.collector_limits.max_body_bytes.to_string(),
    },
    Knob {
        key: "collector.max_stored_bytes",
        env: None,
        help: "Bytes the recent-trace store keeps (names, attribute keys and values, events, \
               links); the oldest traces go first, and what is not stored is counted in /stats.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_STORED_BYTES,
            set: |s, v| s.collector_limits.max_stored_bytes = v,
        },
        get: |s| s.collector_limits.max_stored_bytes.to_string(),
    },
    Knob {
        key: "collector.max_attributes_per_span",
        env: None,
        help: "Attributes stored per span (and per event and link); the rest are counted, \
               not stored.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_PER_SPAN,
            set: |s, v| s.collector_limits.max_attributes_per_span = v,
        },
        get: |s| s.collector_limits.max_attributes_per_span.to_string(),
    },
    Knob {
        key: "collector.max_events_per_span",
        env: None,
        help: "Events stored per span; the rest are counted, not stored.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_PER_SPAN,
            set: |s, v| s.collector_limits.max_events_per_span = v,
        },
        get: |s| s.collector_limits.max_events_per_span.to_string(),
    },
    Knob {
        key: "collector.max_links_per_span",
        env: None,
        help: "Links stored per span; the rest are counted, not stored.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_PER_SPAN,
            set: |s, v| s.collector_limits.max_links_per_span = v,
        },
        get: |s| s.collector_limits.max_links_per_span.to_string(),
    },
    Knob {
        key: "collector.max_connections",
        env: None,
        help: "Connections open at once; at the limit a new one replaces the oldest idle or \
               still-sending-headers one.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_CONNECTIONS,
            set: |s, v| s.collector_limits.max_connections = v,
        },
        get: |s| s.collector_limits.max_connections.to_string(),
    },
    Knob {
        key: "collector.header_read_timeout_ms",
        env: None,
        help: "Time a client has to send a request's headers, and to sit idle between \
               requests, before its connection is closed; milliseconds.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_LATENCY_MS,
            set: |s, v| s.collector_limits.header_read_timeout_ms = v,
        },
        get: |s| s.collector_limits.header_read_timeout_ms.to_string(),
    },
    Knob {
        key: "collector.body_read_timeout_ms",
        env: None,
        help: "Time a client has to send a request's body once its headers have arrived; \
               a body still incomplete is answered 408 and its connection closed; milliseconds.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_LATENCY_MS,
            set: |s, v| s.collector_limits.body_read_timeout_ms = v,
        },
        get: |s| s.collector_limits.body_read_timeout_ms.to_string(),
    },
    Knob {
        key: "collector.max_inflight_body_bytes",
        env: None,
        help: "Bytes of all request bodies the collector holds at once (both listeners); a \
               body past it is refused with a retryable 503 and counted in /stats.",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_INFLIGHT_BODY_BYTES,
            set: |s, v| s.collector_limits.max_inflight_body_bytes = v,
        },
        get: |s| s.collector_limits.max_inflight_body_bytes.to_string(),
    },
    Knob {
        key: "collector.forward",
        env: None,
        help: "Pass every accepted batch on to this backend over OTLP/HTTP (empty: off); \
               what it refuses or never answers is counted apart in /stats.",
        bounds: Bounds::Url(|s, v| s.collector_forward = v),
        get: |s| s.collector_forward.clone().unwrap_or_default(),
    },
    Knob {
        key: "collector.forward_headers",
        env: None,
        help: "HTTP headers sent with every forwarded batch, name=value,name2=value2 \
               (e.g. x-honeycomb-team=KEY); the values are secrets, shown nowhere and left \
               out of saved scenarios.",
        bounds: Bounds::Headers(|s, v| s.collector_forward_headers = v),
        get: |s| s.collector_forward_headers.to_spec(),
    },
    Knob {
        key: "collector.forward_ca_file",
        env: None,
        help: "A PEM file of CA certificates trusted for an https forward, besides the \
               system's roots (a private CA).",
        bounds: Bounds::CaFile(|s, v| s.collector_forward_ca_file = v),
        get: |s| path_text(&s.collector_forward_ca_file),
    },
    Knob {
        key: "shutdown.at_s",
        env: None,
        help: "When SIGTERM arrives, seconds after traffic starts.",
        bounds: Bounds::OptionalFloat {
            none: -1.0,
            means: "no shutdown, the run ends cleanly",
            min: 0.0,
            max: MAX_S,
            set: |s, v| s.shutdown.at_s = v,
        },
        get: |s| {
            s.shutdown
                .at_s
                .map_or_else(|| "-1".into(), |t| t.to_string())
        },
    },
    Knob {
        key: "shutdown.platform",
        env: None,
        help: "Whose shutdown: sets the signal, the grace period (fal 5 s, fly 5 s with SIGINT, \
               ecs 30 s, heroku 30 s, cloud-run 10 s, kubernetes 30 s, lambda 2 s, modal 30 s, \
               replicate 10 s) and the routing lag (kubernetes 2 s, others 0).",
        bounds: Bounds::Choice {
            names: names!(Platform::ALL),
            set: |s, i| s.shutdown.set_platform(Platform::ALL[i]),
        },
        get: |s| s.shutdown.platform.name().into(),
    },
    Knob {
        key: "shutdown.signal",
        env: None,
        help: "The signal that starts the shutdown, sigterm or sigint (fly's default); \
               `probe` sends it to the app.",
        bounds: Bounds::Choice {
            names: names!(StopSignal::ALL),
            set: |s, i| s.shutdown.signal = StopSignal::ALL[i],
        },
        get: |s| s.shutdown.signal.name().into(),
    },
    Knob {
        key: "shutdown.grace_ms",
        env: None,
        help: "SIGTERM to SIGKILL, milliseconds; a value other than the platform's makes it custom.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_MS,
            set: |s, v| {
                s.shutdown.grace_ms = v;
                if s.shutdown.platform.grace_ms() != Some(v) {
                    s.shutdown.platform = Platform::Custom;
                }
            },
        },
        get: |s| s.shutdown.grace_ms.to_string(),
    },
    Knob {
        key: "shutdown.flush_timeout_ms",
        env: None,
        help: "The timeout teardown() passes to force_flush (the seed's 4000); python ignores it, \
               rust waits a fixed 5 s, js waits at most this long.",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_MS,
            set: |s, v| s.shutdown.flush_timeout_ms = v,
        },
        get: |s| s.shutdown.flush_timeout_ms.to_string(),
    },
    Knob {
        key: "shutdown.handle_exit",
        env: None,
        help: "What handle_exit() does with requests in flight: none (they run on) or cancel \
               (they stop at the next step).",
        bounds: Bounds::Choice {
            names: names!(HANDLE_EXITS),
            set: |s, i| s.shutdown.handle_exit = HANDLE_EXITS[i],
        },
        get: |s| s.shutdown.handle_exit.name().into(),
    },
    Knob {
        key: "shutdown.waiting",
        env: None,
        help: "Requests waiting for a slot at SIGTERM: return (the platform's router takes \
               them back and sends them to another runner) or serve (the runner serves its \
               own backlog before exiting).",
        bounds: Bounds::Choice {
            names: names!(Waiting::ALL),
            set: |s, i| s.shutdown.waiting = Waiting::ALL[i],
        },
        get: |s| s.shutdown.waiting.name().into(),
    },
    Knob {
        key: "shutdown.routing_lag_ms",
        env: None,
        help: "New requests keep arriving this long after SIGTERM, milliseconds (kubernetes: \
               endpoint removal reaches the proxies late).",
        bounds: Bounds::Int {
            min: 0,
            max: MAX_MS,
            set: |s, v| s.shutdown.routing_lag_ms = v,
        },
        get: |s| s.shutdown.routing_lag_ms.to_string(),
    },
    Knob {
        key: "fleet.replicas",
        env: None,
        help: "Replicas sharing the traffic, each running this scenario's runner and its \
               platform's shutdown (virtual clock only; 1 is the single runner).",
        bounds: Bounds::Int {
            min: 1,
            max: MAX_REPLICAS,
            set: |s, v| s.fleet.replicas = v as usize,
        },
        get: |s| s.fleet.replicas.to_string(),
    },
    Knob {
        key: "fleet.rollout",
        env: None,
        help: "How a deploy at shutdown.at_s replaces the replicas: all_at_once, or waves of \
               fleet.max_unavailable every fleet.wave_interval_s.",
        bounds: Bounds::Choice {
            names: names!(Rollout::ALL),
            set: |s, i| s.fleet.rollout = Rollout::ALL[i],
        },
        get: |s| s.fleet.rollout.name().into(),
    },
    Knob {
        key: "fleet.max_unavailable",
        env: None,
        help: "Replicas SIGTERMed per wave: a count (5) or a share of the fleet (25%, \
               rounded up).",
        bounds: Bounds::CountOrShare {
            max: MAX_REPLICAS,
            set: |s, v| s.fleet.max_unavailable = v,
        },
        get: |s| s.fleet.max_unavailable.text(),
    },
    Knob {
        key: "fleet.wave_interval_s",
        env: None,
        help: "Seconds from one wave's SIGTERM to the next wave's.",
        bounds: Bounds::Float {
            min: 0.0,
            max: MAX_S,
            set: |s, v| s.fleet.wave_interval_s = v,
        },
        get: |s| s.fleet.wave_interval_s.to_string(),
    },
    Knob {
        key: "fleet.startup_s",
        env: None,
        help: "Seconds from a replica's SIGTERM until its replacement takes traffic (never \
               before the platform stops routing to the old one).",
        bounds: Bounds::Float {
            min: 0.0,
            max: MAX_S,
            set: |s, v| s.fleet.startup_s = v,
        },
        get: |s| s.fleet.startup_s.to_string(),
    },
    Knob {
        key: "fleet.backend_ingest_limit_spans_per_s",
        env: None,
        help: "Spans per second the one backend of the whole fleet ingests before answering \
               429 (each SDK retries those by its own rules).",
        bounds: Bounds::OptionalInt {
            none: 0,
            means: "no limit",
            min: 1,
            max: MAX_INGEST_LIMIT,
            set: |s, v| s.fleet.backend_ingest_limit_spans_per_s = v,
        },
        get: |s| {
            s.fleet
                .backend_ingest_limit_spans_per_s
                .unwrap_or(0)
                .to_string()
        },
    },
];

#[cfg(test)]
mod tests {

    use super::*;

    /// Every knob reads back what it was given, so a saved scenario loads to the same settings;
    /// every choice's names are its values' own.
    #[test]
    fn every_knob_round_trips_and_names_its_range() {
        let defaults = Settings::default();
        for knob in KNOBS {
            let mut s = Settings::default();
            let value = (knob.get)(&defaults);
            assert_eq!(knob.set(&mut s, &value), Ok(()), "{}", knob.key);
            assert_eq!((knob.get)(&s), value, "{}", knob.key);
            assert!(!knob.range().is_empty(), "{}", knob.key);
            if let Bounds::Choice { names, .. } = knob.bounds {
                for name in names() {
                    knob.set(&mut s, &name.to_uppercase()).unwrap();
                    assert_eq!((knob.get)(&s), name, "{}", knob.key);
                }
            }
        }
    }

    #[test]
    fn bounds_parse_check_and_render_once() {
        let mut s = Settings::default();
        let rate = find("tracing.sample_rate").unwrap();
        assert_eq!(rate.range(), "a number from 0 to 1");
        assert_eq!(
            rate.set(&mut s, "1.5").unwrap_err().to_string(),
            "expected a number from 0 to 1"
        );
        let queue = find("batch.max_queue_size").unwrap();
        assert_eq!(queue.set(&mut s, "4_096"), Ok(()));
        assert_eq!(s.batch.max_queue_size, 4096);
        assert_eq!(
            queue.set(&mut s, "0").unwrap_err().expected,
            "a whole number from 1 to 10000000"
        );
        let retry = find("collector.retry_after_s").unwrap();
        assert_eq!(retry.range(), "-1 (none) or a whole number from 0 to 3600");
        retry.set(&mut s, "-1").unwrap();
        assert_eq!(s.collector.retry_after_s, None);
        retry.set(&mut s, "3600").unwrap();
        assert_eq!(s.collector.retry_after_s, Some(3600));
        assert!(retry.set(&mut s, "7200").is_err());
        let limit = find("collector.ingest_limit_spans_per_s").unwrap();
        limit.set(&mut s, "0").unwrap();
        assert_eq!(s.collector.ingest_limit_spans_per_s, None);
        assert!(limit.set(&mut s, "100000001").is_err());
        let at = find("shutdown.at_s").unwrap();
        at.set(&mut s, "-1").unwrap();
        assert_eq!(s.shutdown.at_s, None);
        assert!(at.set(&mut s, "-2").is_err());
        let semantics = find("tracing.semantics").unwrap();
        assert_eq!(semantics.range(), "python, rust, js or sdk");
        assert!(
            find("tracing.service_name")
                .unwrap()
                .set(&mut s, "")
                .is_err()
        );
        let endpoint = find("exporter.endpoint").unwrap();
        assert_eq!(endpoint.set(&mut s, "https://x:443/v1/traces"), Ok(()));
        for bad in ["https://", "https:///v1/traces", "https://:443", "ftp://x"] {
            assert!(endpoint.set(&mut s, bad).is_err(), "{bad}");
            assert!(forward_url(bad).is_err(), "{bad}");
        }
        assert_eq!(
            forward_url("https://api.honeycomb.io"),
            Ok(Some("https://api.honeycomb.io/v1/traces".into()))
        );
    }
}
