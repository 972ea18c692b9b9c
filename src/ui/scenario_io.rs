//! Scenario files from the window: the same TOML `gracetrace run --scenario` reads,
//! written from the knob table's getters so that a saved file loads back to the same
//! settings; and the settings remembered between launches.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::config::{Settings, env, knobs};

/// The settings as scenario TOML: one table per section, every knob.
pub fn to_toml(settings: &Settings) -> String {
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
        let _ = writeln!(out, "{name} = {}", toml_value(&value));
    }
    out
}

/// Typed where the text is a TOML boolean or number (so the file reads naturally),
/// quoted otherwise; the loader hands both forms to the same setter.
fn toml_value(raw: &str) -> String {
    if raw == "true" || raw == "false" || raw.parse::<i64>().is_ok() {
        return raw.to_string();
    }
    match raw.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            if raw.contains(['.', 'e', 'E']) {
                raw.to_string()
            } else {
                format!("{raw}.0")
            }
        }
        _ => toml::Value::String(raw.to_string()).to_string(),
    }
}

/// Loads a scenario exactly as `gracetrace run --scenario` does (defaults, environment,
/// then the file). The error names the file and line.
pub fn load(path: &str) -> Result<Settings, String> {
    let path = path.trim();
    if path.is_empty() {
        return Err("type a scenario file path first".into());
    }
    Settings::load(&env::process_env, Some(Path::new(path)), &[]).map_err(|e| e.to_string())
}

pub fn save(path: &str, settings: &Settings) -> Result<(), String> {
    let path = path.trim();
    if path.is_empty() {
        return Err("type a scenario file path first".into());
    }
    std::fs::write(path, to_toml(settings)).map_err(|e| format!("cannot write {path}: {e}"))
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

pub fn save_last(settings: &Settings) -> Result<(), String> {
    let path = last_path().ok_or("no config directory (neither XDG_CONFIG_HOME nor HOME)")?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, to_toml(settings))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}
