//! Scenario files written and read for the window: the same TOML `gracetrace run
//! --scenario` reads, written from the knob table's getters so that a saved file loads
//! back to the same settings; and the settings remembered between launches.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::knobs::{self, Bounds};
use super::{ConfigError, Settings};

/// Why a scenario file could not be read or written; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioFileError {
    /// The path field was empty.
    #[error("type a scenario file path first")]
    NoPath,
    /// The file loaded but a value in it is invalid (the error names file and line).
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The OS refused to write the file or create its folder.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Neither XDG_CONFIG_HOME nor HOME is set, so there is nowhere to remember settings.
    #[error("no config directory (neither XDG_CONFIG_HOME nor HOME is set)")]
    NoConfigDir,
}

/// The settings as scenario TOML: one table per section, every knob but the header
/// values, which are secrets: a header knob is written as a comment naming its headers.
pub fn to_toml(settings: &Settings) -> String {
    toml_with(settings, false)
}

/// [`to_toml`] with the header values, for a user who asked to keep them in the file.
pub fn to_toml_with_secrets(settings: &Settings) -> String {
    toml_with(settings, true)
}

fn toml_with(settings: &Settings, secrets: bool) -> String {
    let mut out =
        String::from("# Written by the gracetrace window; `gracetrace run --scenario` reads it.\n");
    let mut section = "";
    for knob in knobs::KNOBS {
        let value = (knob.get)(settings);
        let (table, name) = knob.key.split_once('.').unwrap_or(("", knob.key));
        if table != section {
            let _ = write!(out, "\n[{table}]\n");
            section = table;
        }
        if let (Bounds::Headers(_), false) = (&knob.bounds, secrets) {
            let names = super::Headers::parse(&value).map(|h| h.names().join(", "));
            let _ = writeln!(
                out,
                "# {name}: values not saved (secrets); names: {}",
                names.unwrap_or_default()
            );
            continue;
        }
        let _ = writeln!(out, "{name} = {}", toml_value(&knob.bounds, &value));
    }
    out
}

/// The knob's value in the TOML type its bounds take (a boolean, an integer, a float or
/// a string), so that the file reads naturally and loads back to the same value: a text
/// knob holding `64` is written `"64"`, since the loader reads an integer there as an
/// error.
fn toml_value(bounds: &Bounds, raw: &str) -> String {
    match bounds {
        Bounds::Bool(_) | Bounds::Int { .. } | Bounds::OptionalInt { .. } => raw.to_string(),
        // `f64`'s Display never writes an exponent, and a whole number without its `.0`.
        Bounds::Float { .. } | Bounds::OptionalFloat { .. } if raw.contains('.') => raw.to_string(),
        Bounds::Float { .. } | Bounds::OptionalFloat { .. } => format!("{raw}.0"),
        Bounds::CountOrShare { .. } if !raw.ends_with('%') => raw.to_string(),
        Bounds::Text(_)
        | Bounds::NonEmpty(_)
        | Bounds::Choice { .. }
        | Bounds::Endpoint(_)
        | Bounds::Url(_)
        | Bounds::Headers(_)
        | Bounds::CaFile(_)
        | Bounds::CountOrShare { .. } => toml::Value::String(raw.to_string()).to_string(),
    }
}

/// Loads a scenario exactly as `gracetrace run --scenario` does (defaults, environment,
/// then the file). The error names the file and line.
pub fn load(path: &Path) -> Result<Settings, ScenarioFileError> {
    if path.as_os_str().is_empty() {
        return Err(ScenarioFileError::NoPath);
    }
    Ok(Settings::load_from_process(Some(path), &[])?)
}

/// Writes `settings` as a scenario file at `path`.
pub fn save(path: &Path, settings: &Settings) -> Result<(), ScenarioFileError> {
    if path.as_os_str().is_empty() {
        return Err(ScenarioFileError::NoPath);
    }
    std::fs::write(path, to_toml(settings)).map_err(|source| ScenarioFileError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// `$XDG_CONFIG_HOME/gracetrace/last.toml`, else `~/.config/gracetrace/last.toml`.
pub fn last_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("gracetrace").join("last.toml"))
}

/// The settings of the last session, if any were saved and still load (a file from an
/// older version that no longer validates is ignored, with a note on stderr).
pub fn load_last() -> Option<Settings> {
    let path = last_path()?;
    if !path.exists() {
        return None;
    }
    match Settings::load(&|_| None, Some(&path), &[]) {
        Ok(settings) => Some(settings),
        Err(error) => {
            eprintln!("gracetrace: ignoring the remembered settings: {error}");
            None
        }
    }
}

/// Remembers `settings` for the next launch (`last.toml`).
pub fn save_last(settings: &Settings) -> Result<(), ScenarioFileError> {
    let path = last_path().ok_or(ScenarioFileError::NoConfigDir)?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| ScenarioFileError::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    save(&path, settings)
}
