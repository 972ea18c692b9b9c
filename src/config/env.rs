//! The environment variables users of the Python SDK on fal already set, read the way
//! their app reads them.
//!
//! Most map one to one onto a knob (the `env` column of [`super::knobs::KNOBS`]). A few
//! need rules of their own, written out here:
//! - `ENABLE_TRACING` and `OTEL_SDK_DISABLED` both switch tracing; disabled wins.
//! - `OTEL_SAMPLE_RATE` (the seed's) wins over `OTEL_TRACES_SAMPLER`, because the seed
//!   passes an explicit sampler to `TracerProvider`, and an explicit sampler overrides
//!   the environment in opentelemetry-sdk.
//! - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is used as is; `OTEL_EXPORTER_OTLP_ENDPOINT` is a
//!   base to which `/v1/traces` is appended (the OTLP exporter specification).
//! - `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_CERTIFICATE` set
//!   `exporter.headers` and `exporter.ca_file`; their `_TRACES_` forms win over them.

use super::{ConfigError, Settings, Source, knobs};

/// The variables read here besides the knob table's `env` column, with the knob each sets.
/// The README's table lists exactly these and the table's (a test in `knobs.rs` checks).
pub const SPECIAL: &[(&str, &str)] = &[
    ("OTEL_SDK_DISABLED", "tracing.enabled"),
    ("OTEL_TRACES_SAMPLER", "tracing.sample_rate"),
    ("OTEL_TRACES_SAMPLER_ARG", "tracing.sample_rate"),
    ("OTEL_EXPORTER_OTLP_ENDPOINT", "exporter.endpoint"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "exporter.headers"),
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "exporter.headers"),
    ("OTEL_EXPORTER_OTLP_CERTIFICATE", "exporter.ca_file"),
    ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "exporter.ca_file"),
];

/// Variables read as a general one, then a signal-specific one that wins over it (the
/// OTLP exporter specification), for knobs without an `env` column of their own.
const GENERAL_THEN_TRACES: &[(&str, &str, &str)] = &[
    (
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "exporter.headers",
    ),
    (
        "OTEL_EXPORTER_OTLP_CERTIFICATE",
        "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
        "exporter.ca_file",
    ),
];

/// Applies every variable `get` returns, in a fixed order so precedence is deterministic.
pub fn apply(
    settings: &mut Settings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let set = |settings: &mut Settings, key: &str, var: &str, raw: &str| {
        settings.set(key, raw, Source::Env(var.to_string()))
    };

    if let Some(base) = get("OTEL_EXPORTER_OTLP_ENDPOINT") {
        let url = format!("{}/v1/traces", base.trim().trim_end_matches('/'));
        set(
            settings,
            "exporter.endpoint",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &url,
        )?;
    }
    sampler_from_env(settings, get)?;
    for (general, traces, key) in GENERAL_THEN_TRACES {
        for var in [general, traces] {
            if let Some(raw) = get(var) {
                set(settings, key, var, &raw)?;
            }
        }
    }
    for knob in knobs::KNOBS {
        let Some(var) = knob.env else { continue };
        if let Some(raw) = get(var) {
            set(settings, knob.key, var, &raw)?;
        }
    }
    if let Some(raw) = get("OTEL_SDK_DISABLED") {
        let disabled = knobs::boolean(raw.trim()).map_err(|invalid| ConfigError {
            source: Source::Env("OTEL_SDK_DISABLED".into()),
            key: "tracing.enabled".into(),
            value: raw.clone(),
            allowed: invalid.to_string(),
        })?;
        if disabled {
            settings.tracing.enabled = false;
        }
    }
    Ok(())
}

/// `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`, as opentelemetry-sdk reads them
/// (`opentelemetry/sdk/trace/sampling.py`, `_get_from_env_or_default`). The product always
/// builds `ParentBased(ratio)`; the non-parent-based names differ from it only for spans
/// with a remote parent, which the workload never makes, so they map onto the same ratio.
fn sampler_from_env(
    settings: &mut Settings,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some(name) = get("OTEL_TRACES_SAMPLER") else {
        return Ok(());
    };
    // The rate goes through the `tracing.sample_rate` knob, so its range is the knob's.
    let (var, rate) = match name.trim().to_ascii_lowercase().as_str() {
        "always_on" | "parentbased_always_on" => ("OTEL_TRACES_SAMPLER", "1".to_string()),
        "always_off" | "parentbased_always_off" => ("OTEL_TRACES_SAMPLER", "0".to_string()),
        "traceidratio" | "parentbased_traceidratio" => match get("OTEL_TRACES_SAMPLER_ARG") {
            None => ("OTEL_TRACES_SAMPLER", "1".to_string()),
            Some(arg) => ("OTEL_TRACES_SAMPLER_ARG", arg),
        },
        _ => {
            return Err(ConfigError {
                source: Source::Env("OTEL_TRACES_SAMPLER".into()),
                key: "tracing.sample_rate".into(),
                value: name,
                allowed: "expected always_on, always_off, traceidratio, parentbased_always_on, \
                          parentbased_always_off or parentbased_traceidratio"
                    .into(),
            });
        }
    };
    settings.set("tracing.sample_rate", &rate, Source::Env(var.into()))
}

/// The process environment, as the loader's lookup function. A value that is not UTF-8
/// reads as unset here; [`check_process_env`] refuses it before the loader runs.
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Every variable the loader reads: the knob table's `env` column and [`SPECIAL`].
pub fn variables() -> impl Iterator<Item = &'static str> {
    knobs::KNOBS
        .iter()
        .filter_map(|k| k.env)
        .chain(SPECIAL.iter().map(|(var, _)| *var))
}

/// Refuses a variable the loader reads whose value is not UTF-8, naming it, since no
/// knob can take such a value and ignoring it would run with the default unannounced.
pub fn check_process_env() -> Result<(), ConfigError> {
    check_env(&|var| std::env::var_os(var))
}

/// [`check_process_env`] over any lookup, so that it can be tested without touching the
/// process environment.
pub fn check_env(get: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<(), ConfigError> {
    for var in variables() {
        if let Some(value) = get(var)
            && value.to_str().is_none()
        {
            return Err(ConfigError {
                source: Source::Env(var.to_string()),
                key: key_of(var).to_string(),
                // A header list holds secrets; the variable's name says enough.
                value: match key_of(var) {
                    "exporter.headers" => "(hidden: header values are secrets)".into(),
                    _ => value.to_string_lossy().into_owned(),
                },
                allowed: "the value is not valid UTF-8".into(),
            });
        }
    }
    Ok(())
}

/// The knob a variable sets.
fn key_of(var: &str) -> &'static str {
    knobs::KNOBS
        .iter()
        .find(|k| k.env == Some(var))
        .map(|k| k.key)
        .or_else(|| SPECIAL.iter().find(|(v, _)| *v == var).map(|(_, k)| *k))
        .unwrap_or("")
}

/// The variable to blame for a rule over `keys`: the first of them that a set variable
/// sets (checked in the knobs' order), else the batch variables as a group.
pub fn blame(keys: &[&str], get: &dyn Fn(&str) -> Option<String>) -> Source {
    let set_by = |key: &str| variables().find(|var| key_of(var) == key && get(var).is_some());
    let var = keys.iter().find_map(|key| set_by(key));
    Source::Env(var.unwrap_or("OTEL_BSP_*").to_string())
}
