//! Every knob in one place: its default, its environment variable, its scenario-TOML key
//! and its valid range.
//!
//! Settings are built in layers, each overriding the one before:
//! defaults -> environment -> scenario file -> `--set key=value`.
//! Every layer feeds raw text through the same [`knobs::KNOBS`] table, so a value is
//! validated the same way whether it came from `OTEL_SAMPLE_RATE`, from line 12 of a
//! scenario or from the command line, and the error names where it came from.

pub mod draws;
pub mod env;
mod faults;
pub mod features;
mod fleet;
#[cfg(test)]
pub(crate) mod fuzzing;
pub mod headers;
pub mod knobs;
#[cfg(test)]
mod readme_tables;
pub mod scenario;
pub mod scenario_file;
mod settings;
pub mod tls;
mod validate;

pub use faults::*;
pub use features::NotBuilt;
pub use fleet::*;
pub use headers::Headers;
pub use knobs::{MAX_INGEST_LIMIT, MAX_LATENCY_MS, MAX_RETRY_AFTER_S};
pub use settings::*;
pub use validate::FaultError;

use std::fmt;

/// Where a value came from, so an error can point the user at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Default,
    Env(String),
    File {
        path: String,
        line: usize,
    },
    CommandLine,
    /// Changed while running (a slider, a live command).
    Live,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Default => write!(f, "default"),
            Source::Env(var) => write!(f, "environment variable {var}"),
            Source::File { path, line } => write!(f, "{path}:{line}"),
            Source::CommandLine => write!(f, "--set"),
            Source::Live => write!(f, "live change"),
        }
    }
}

/// A value that cannot be used: names the input, the value and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub source: Source,
    /// The knob's key (`batch.max_queue_size`) or, for a malformed file, empty.
    pub key: String,
    pub value: String,
    /// What would have been accepted, in words.
    pub allowed: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.source, self.key.is_empty()) {
            (_, true) => write!(f, "{}: {}", self.source, self.allowed),
            (Source::Env(var), false) => write!(
                f,
                "{var}={:?} is invalid ({}): {}",
                self.value, self.key, self.allowed
            ),
            (source, false) => write!(
                f,
                "{source}: {} = {:?} is invalid: {}",
                self.key, self.value, self.allowed
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Settings {
    /// Sets one knob from its raw text, validating it; `source` is only for the error.
    pub fn set(&mut self, key: &str, raw: &str, source: Source) -> Result<(), ConfigError> {
        self.set_value(key, knobs::Value::Raw(raw.trim()), raw, source)
    }

    /// Sets one knob from a value as its source typed it; `shown` is the value as the user
    /// wrote it and `source` where, both only for the error.
    pub fn set_value(
        &mut self,
        key: &str,
        value: knobs::Value<'_>,
        shown: &str,
        source: Source,
    ) -> Result<(), ConfigError> {
        let error = |allowed: String| ConfigError {
            source: source.clone(),
            key: key.to_string(),
            value: shown.to_string(),
            allowed,
        };
        let knob = knobs::find(key).ok_or_else(|| {
            error(format!(
                "unknown key; known keys are: {}",
                knobs::KNOBS
                    .iter()
                    .map(|k| k.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        knob.set_value(self, value).map_err(|invalid| {
            let mut error = error(invalid.to_string());
            // A header list holds secrets: the error says where and what, never the text.
            if let knobs::Bounds::Headers(_) = knob.bounds {
                error.value = "(hidden: header values are secrets)".into();
            }
            error
        })
    }

    /// Checks the rules that span several knobs, after every layer has been applied.
    /// `source` says which layer to blame (the last one that could have caused it).
    pub fn validate(&self, source: Source) -> Result<(), ConfigError> {
        self.validate_blaming(&|_| source.clone())
    }

    /// As [`Settings::validate`], blaming `blame(keys)`: the input that set one of the
    /// knobs a rule involves (they come first the knob the error names), so that a batch
    /// larger than the queue is reported at the line or variable that set one of them.
    pub fn validate_blaming(&self, blame: &dyn Fn(&[&str]) -> Source) -> Result<(), ConfigError> {
        if self.batch.max_export_batch_size > self.batch.max_queue_size {
            return Err(ConfigError {
                source: blame(&["batch.max_export_batch_size", "batch.max_queue_size"]),
                key: "batch.max_export_batch_size".into(),
                value: self.batch.max_export_batch_size.to_string(),
                allowed: format!(
                    "must not exceed batch.max_queue_size ({}); both SDKs reject this",
                    self.batch.max_queue_size
                ),
            });
        }
        self.validate_workload(blame)?;
        let limits = self.collector_limits.validate();
        self.collector
            .validate()
            .and(limits)
            .map_err(|fault| ConfigError {
                source: blame(&[fault.key]),
                key: fault.key.into(),
                value: fault.value,
                allowed: fault.invalid.to_string(),
            })
    }

    /// The workload's rules that span several knobs: bursts no closer than
    /// [`MIN_BURST_EVERY_S`], and a schedule of at most [`MAX_ARRIVALS`] arrivals, so every
    /// run ends in bounded time.
    fn validate_workload(&self, blame: &dyn Fn(&[&str]) -> Source) -> Result<(), ConfigError> {
        let w = &self.workload;
        if w.burst_every_s > 0.0 && w.burst_every_s < MIN_BURST_EVERY_S {
            return Err(ConfigError {
                source: blame(&["workload.burst_every_s"]),
                key: "workload.burst_every_s".into(),
                value: w.burst_every_s.to_string(),
                allowed: format!("0 (no bursts) or from {MIN_BURST_EVERY_S} seconds up"),
            });
        }
        let arrivals = w.expected_arrivals();
        if arrivals > MAX_ARRIVALS {
            const KEYS: [&str; 4] = [
                "workload.rate_per_s",
                "workload.duration_s",
                "workload.burst_size",
                "workload.burst_every_s",
            ];
            return Err(ConfigError {
                source: blame(&KEYS),
                key: "workload.rate_per_s".into(),
                value: w.rate_per_s.to_string(),
                allowed: format!(
                    "the schedule (duration_s {} x rate_per_s, plus a burst of {} every {} s) \
                     makes {arrivals:.3e} arrivals; one run makes at most {MAX_ARRIVALS:.0}",
                    w.duration_s, w.burst_size, w.burst_every_s
                ),
            });
        }
        Ok(())
    }

    /// Applies `key=value` pairs from the command line.
    pub fn apply_overrides(&mut self, pairs: &[String]) -> Result<(), ConfigError> {
        for pair in pairs {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(ConfigError {
                    source: Source::CommandLine,
                    key: String::new(),
                    value: pair.clone(),
                    allowed: format!("{pair:?} is not of the form key=value"),
                });
            };
            self.set(key.trim(), value, Source::CommandLine)?;
        }
        Ok(())
    }

    /// The whole layered load used by `gracetrace run`. A rule that spans several knobs
    /// (the batch must fit the queue) is checked after each layer and blamed on the input
    /// of that layer that set one of its knobs: the variable, or the file's line.
    pub fn load(
        env: &dyn Fn(&str) -> Option<String>,
        scenario_path: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        env::apply(&mut settings, env)?;
        settings.validate_blaming(&|keys| env::blame(keys, env))?;
        if let Some(path) = scenario_path {
            let lines = scenario::apply_file(&mut settings, path)?;
            let shown = path.display().to_string();
            settings.validate_blaming(&|keys| {
                let line = keys.iter().find_map(|k| lines.get(*k).copied());
                Source::File {
                    path: shown.clone(),
                    line: line.unwrap_or(1),
                }
            })?;
        }
        settings.apply_overrides(overrides)?;
        settings.validate(Source::CommandLine)?;
        Ok(settings)
    }

    /// [`Settings::load`] from the process environment, refusing first any variable it
    /// reads whose value is not UTF-8 (instead of silently ignoring it).
    pub fn load_from_process(
        scenario_path: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Settings, ConfigError> {
        env::check_process_env()?;
        Settings::load(&env::process_env, scenario_path, overrides)
    }
}
