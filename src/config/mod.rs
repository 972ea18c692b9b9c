//! Every knob in one place: its default, its environment variable, its scenario-TOML key
//! and its valid range.
//!
//! Settings are built in layers, each overriding the one before:
//! defaults -> environment -> scenario file -> `--set key=value`.
//! Every layer feeds raw text through the same [`knobs::KNOBS`] table, so a value is
//! validated the same way whether it came from `OTEL_SAMPLE_RATE`, from line 12 of a
//! scenario or from the command line, and the error names where it came from.

pub mod env;
mod faults;
pub mod knobs;
pub mod scenario;
pub mod scenario_file;
mod settings;

pub use faults::*;
pub use settings::*;

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
        let error = |allowed: String| ConfigError {
            source: source.clone(),
            key: key.to_string(),
            value: raw.to_string(),
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
        knob.set(self, raw.trim())
            .map_err(|invalid| error(invalid.to_string()))
    }

    /// Checks the rules that span several knobs, after every layer has been applied.
    /// `source` says which layer to blame (the last one that could have caused it).
    pub fn validate(&self, source: Source) -> Result<(), ConfigError> {
        if self.batch.max_export_batch_size > self.batch.max_queue_size {
            return Err(ConfigError {
                source,
                key: "batch.max_export_batch_size".into(),
                value: self.batch.max_export_batch_size.to_string(),
                allowed: format!(
                    "must not exceed batch.max_queue_size ({}); both SDKs reject this",
                    self.batch.max_queue_size
                ),
            });
        }
        self.collector.validate().map_err(|fault| ConfigError {
            source,
            key: fault.key.into(),
            value: fault.value,
            allowed: fault.invalid.to_string(),
        })
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

    /// The whole layered load used by `gracetrace run`.
    pub fn load(
        env: &dyn Fn(&str) -> Option<String>,
        scenario_path: Option<&std::path::Path>,
        overrides: &[String],
    ) -> Result<Settings, ConfigError> {
        let mut settings = Settings::default();
        env::apply(&mut settings, env)?;
        settings.validate(Source::Env("OTEL_BSP_*".into()))?;
        if let Some(path) = scenario_path {
            scenario::apply_file(&mut settings, path)?;
            settings.validate(Source::File {
                path: path.display().to_string(),
                line: 1,
            })?;
        }
        settings.apply_overrides(overrides)?;
        settings.validate(Source::CommandLine)?;
        Ok(settings)
    }
}
