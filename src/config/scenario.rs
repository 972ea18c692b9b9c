//! Scenario files: TOML whose tables are the knob sections (`[tracing]`, `[batch]`, ...).
//!
//! The file is parsed with spans so that every error names `file:line`, and each value is
//! handed to the same setter as the environment and `--set`, so the rules cannot drift.

use std::collections::HashMap;
use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::knobs::{self, Value};
use super::{ConfigError, Settings, Source};

/// The line of every key a file set, for errors found after it was applied.
pub type Lines = HashMap<String, usize>;

/// Reads and applies a scenario file; returns the line of every key it set.
pub fn apply_file(settings: &mut Settings, path: &Path) -> Result<Lines, ConfigError> {
    let shown = path.display().to_string();
    let text = read_scenario(path).map_err(|why| ConfigError {
        source: Source::File {
            path: shown.clone(),
            line: 0,
        },
        key: String::new(),
        value: String::new(),
        allowed: format!("cannot read the scenario file: {why}"),
    })?;
    apply_str(settings, &text, &shown)
}

/// The largest scenario file read: every knob with a long comment fits in a few kilobytes,
/// so a megabyte is a mistake (a log, a binary), refused before it fills memory.
pub const MAX_SCENARIO_BYTES: u64 = 1024 * 1024;

/// Why a scenario file could not be read (its text is not looked at yet).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotAFile,
    #[error("{0} bytes; a scenario file has at most {MAX_SCENARIO_BYTES}")]
    TooLarge(u64),
}

/// Reads a scenario file: a regular file (a FIFO with no writer, a device or a folder
/// would block or never end), at most [`MAX_SCENARIO_BYTES`], in UTF-8.
fn read_scenario(path: &Path) -> Result<String, ReadError> {
    use std::io::Read as _;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile);
    }
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(ReadError::TooLarge(meta.len()));
    }
    // Opened after the check, and read with a cap in case it grew in between.
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(MAX_SCENARIO_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(ReadError::TooLarge(text.len() as u64));
    }
    Ok(text)
}

/// Applies scenario text; `path` is only used in errors. Every value must have its knob's
/// TOML type (a string is never read as a number), every table must be a knob section
/// (an empty one too), and every error names the line of the key it is about.
pub fn apply_str(settings: &mut Settings, text: &str, path: &str) -> Result<Lines, ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let source = |line: usize| Source::File {
        path: path.to_string(),
        line,
    };
    let root = DeTable::parse(text).map_err(|e| {
        let span = e.span();
        ConfigError {
            source: source(span.as_ref().map_or(1, |s| line_of(s.start))),
            key: String::new(),
            value: String::new(),
            allowed: format!(
                "not valid TOML: {}",
                parse_message(e.message(), span.and_then(|s| text.get(s)))
            ),
        }
    })?;

    let mut leaves = Vec::new();
    collect_leaves(root.get_ref(), "", &mut leaves).map_err(|(table, offset)| ConfigError {
        source: source(line_of(offset)),
        key: String::new(),
        value: String::new(),
        allowed: format!(
            "[{table}] is not a section; the sections are {}",
            sections().join(", ")
        ),
    })?;
    let mut lines = Lines::new();
    for (key, value) in leaves {
        let line = line_of(value.span().start);
        let (typed, shown) = match value.get_ref() {
            DeValue::String(s) => (Value::Str(s), s.to_string()),
            DeValue::Integer(i) => match i128::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) => (Value::Int(n), i.to_string()),
                Err(_) => (Value::Raw(""), i.to_string()),
            },
            DeValue::Float(f) => match f.as_str().parse::<f64>() {
                Ok(v) => (Value::Float(v), f.as_str().to_string()),
                Err(_) => (Value::Raw(""), f.as_str().to_string()),
            },
            DeValue::Boolean(b) => (Value::Bool(*b), b.to_string()),
            other => {
                return Err(ConfigError {
                    source: source(line),
                    key,
                    value: other.type_str().to_string(),
                    allowed: "expected a string, a number or a boolean".into(),
                });
            }
        };
        settings.set_value(&key, typed, &shown, source(line))?;
        lines.insert(key, line);
    }
    Ok(lines)
}

/// The TOML parser's message, with the key named where it says "duplicate key" without
/// saying which.
fn parse_message(message: &str, at: Option<&str>) -> String {
    match at {
        Some(key) if message.contains("duplicate key") && !message.contains(key.trim()) => {
            format!("duplicate key `{}`: {message}", key.trim())
        }
        _ => message.trim().to_string(),
    }
}

/// The knob sections, `tracing`, `batch`, ...: every table of a scenario is one of them.
fn sections() -> Vec<&'static str> {
    let mut names: Vec<&str> = Vec::new();
    for knob in knobs::KNOBS {
        if let Some((section, _)) = knob.key.split_once('.')
            && !names.contains(&section)
        {
            names.push(section);
        }
    }
    names
}

type Leaf<'a> = (String, &'a toml::Spanned<DeValue<'a>>);

/// Flattens nested tables into `section.key` leaves, in file order. A table that is not a
/// knob section, even an empty one, is an error: `(its name, its offset)`.
fn collect_leaves<'a>(
    table: &'a DeTable<'a>,
    prefix: &str,
    out: &mut Vec<Leaf<'a>>,
) -> Result<(), (String, usize)> {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    for (key, value) in entries {
        let full = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        match value.get_ref() {
            DeValue::Table(inner) if prefix.is_empty() && sections().contains(&full.as_str()) => {
                collect_leaves(inner, &full, out)?
            }
            DeValue::Table(_) => return Err((full, key.span().start)),
            _ => out.push((full, value)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_and_errors_name_the_line() {
        let mut s = Settings::default();
        apply_str(
            &mut s,
            "name = \"t\"\n[batch]\nmax_queue_size = 4_096\n[tracing]\nsample_rate = 0.25\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(s.batch.max_queue_size, 4096);
        assert_eq!(s.tracing.sample_rate, 0.25);

        let err = apply_str(&mut s, "[tracing]\n\nsample_rate = 1.5\n", "t.toml").unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.toml:3: tracing.sample_rate = \"1.5\" is invalid: expected a number from 0 to 1"
        );
        let err = apply_str(&mut s, "[batch]\nqueue = 3\n", "t.toml").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.toml:2: batch.queue = \"3\" is invalid: unknown key")
        );
        let err = apply_str(&mut s, "[batch\nx=1", "t.toml").unwrap_err();
        assert!(
            err.to_string().starts_with("t.toml:1: not valid TOML"),
            "{err}"
        );
    }

    fn error(text: &str) -> String {
        apply_str(&mut Settings::default(), text, "t.toml")
            .unwrap_err()
            .to_string()
    }

    /// Integers mean what TOML says, whatever their radix.
    #[test]
    fn toml_integers_are_toml_integers() {
        let mut s = Settings::default();
        let text = "[batch]\nmax_queue_size = 0x800\nmax_export_batch_size = 0o17\n\
                    schedule_delay_ms = 0b101\nexport_timeout_ms = 1_000\n\
                    [tracing]\nsample_rate = 1\n[shutdown]\nat_s = -1\n";
        apply_str(&mut s, text, "t.toml").unwrap();
        assert_eq!(s.batch.max_queue_size, 2048);
        assert_eq!(s.batch.max_export_batch_size, 15);
        assert_eq!(s.batch.schedule_delay_ms, 5);
        assert_eq!(s.batch.export_timeout_ms, 1000);
        assert_eq!(s.tracing.sample_rate, 1.0);
        assert_eq!(s.shutdown.at_s, None);
        // TOML allows no sign on a hex integer.
        let err = error("[batch]\nmax_queue_size = -0x1\n");
        assert!(err.starts_with("t.toml:2: not valid TOML"), "{err}");
        assert_eq!(
            error("[batch]\nmax_queue_size = -5\n"),
            "t.toml:2: batch.max_queue_size = \"-5\" is invalid: expected a whole number \
             from 1 to 10000000"
        );
        assert_eq!(
            error("[batch]\nmax_queue_size = 1.5\n"),
            "t.toml:2: batch.max_queue_size = \"1.5\" is invalid: expected a whole number \
             from 1 to 10000000, not a float"
        );
    }

    /// A string where a number or a boolean belongs is an error naming the key and line.
    #[test]
    fn strings_are_not_numbers_or_booleans() {
        assert_eq!(
            error("[batch]\n\nmax_queue_size = \"64\"\n"),
            "t.toml:3: batch.max_queue_size = \"64\" is invalid: expected a whole number \
             from 1 to 10000000, not a string"
        );
        assert_eq!(
            error("[tracing]\nenabled = \"true\"\n"),
            "t.toml:2: tracing.enabled = \"true\" is invalid: expected true or false, not a string"
        );
        assert!(error("[tracing]\nsemantics = 1\n").ends_with("not an integer"));
        assert!(error("[tracing]\nsample_rate = true\n").ends_with("not a boolean"));
    }

    /// An unknown section is an error even when empty, at its line; so is a nested table.
    #[test]
    fn unknown_sections_are_errors() {
        let err = error("name = \"x\"\n\n[foo]\n");
        assert!(
            err.starts_with("t.toml:3: [foo] is not a section; the sections are tracing, batch"),
            "{err}"
        );
        let err = error("[batch]\nmax_queue_size = 8\n[batch.inner]\n");
        assert!(
            err.starts_with("t.toml:3: [batch.inner] is not a section"),
            "{err}"
        );
        let err = error("[tracing]\nsample_rate = 1\n[foo]\nx = 1\n");
        assert!(err.starts_with("t.toml:3: [foo]"), "{err}");
    }

    #[test]
    fn duplicate_key_is_named() {
        let err = error("[batch]\nmax_queue_size = 8\nmax_queue_size = 9\n");
        assert!(err.starts_with("t.toml:3: "), "{err}");
        assert!(err.contains("max_queue_size"), "{err}");
        assert!(err.contains("duplicate"), "{err}");
    }

    /// A batch larger than the queue is blamed on the line that set one of them.
    #[test]
    fn batch_over_queue_names_its_line() {
        let dir = std::env::temp_dir().join(format!("gracetrace-scn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            Settings::load(&|_| None, Some(&path), &[])
                .unwrap_err()
                .to_string()
        };
        let shown = path.display();
        let err = load("name = \"x\"\n[batch]\nmax_queue_size = 64\nmax_export_batch_size = 128\n");
        assert!(
            err.starts_with(&format!("{shown}:4: batch.max_export_batch_size")),
            "{err}"
        );
        // Only the queue set here (the batch is the default 512): the queue's line.
        let err = load("\n[batch]\nmax_queue_size = 64\n");
        assert!(
            err.starts_with(&format!("{shown}:3: batch.max_export_batch_size")),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Found by the fuzz pass: a text knob holding digits was saved as an integer, which
    /// the typed loader then refused.
    #[test]
    fn saved_scenarios_load_back_whatever_their_text() {
        let mut s = Settings::default();
        apply_str(
            &mut s,
            "name = \"64\"\n[tracing]\nservice_name = \"true\"\n",
            "t",
        )
        .unwrap();
        let saved = crate::config::scenario_file::to_toml(&s);
        let mut again = Settings::default();
        apply_str(&mut again, &saved, "saved.toml").unwrap();
        assert_eq!(again, s);
        assert!(
            saved.contains("name = \"64\"") && saved.contains("sample_rate = 1.0"),
            "{saved}"
        );
    }

    /// A scenario made of lines a user might write: known and unknown sections and keys,
    /// values of every TOML type in every integer radix.
    fn scenario_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let keys: Vec<&'static str> = knobs::KNOBS.iter().map(|k| k.key).collect();
        let value = prop_oneof![
            any::<i64>().prop_map(|n| n.to_string()),
            (0u64..100_000).prop_map(|n| format!("0x{n:x}")),
            (0u64..100_000).prop_map(|n| format!("0o{n:o}")),
            (0u64..4096).prop_map(|n| format!("0b{n:b}")),
            (0u64..10_000_000).prop_map(|n| n.to_string().chars().rev().collect::<String>()),
            any::<f64>().prop_map(|f| format!("{f:?}")),
            any::<bool>().prop_map(|b| b.to_string()),
            "[a-z0-9_.:/ -]{0,12}".prop_map(|t| format!("{t:?}")),
            Just("[1, 2]".to_string()),
            Just("{ a = 1 }".to_string()),
        ];
        let line = prop_oneof![
            4 => (proptest::sample::select(keys), value)
                .prop_map(|(key, v)| match key.split_once('.') {
                    Some((section, name)) => format!("[{section}]\n{name} = {v}"),
                    None => format!("{key} = {v}"),
                }),
            1 => "[a-z_.]{1,10}".prop_map(|t| format!("[{t}]")),
            1 => "[a-z_]{1,10} = [0-9]{1,4}",
            1 => "[ -~]{0,20}",
        ];
        proptest::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n"))
    }

    /// The fuzz pass over the scenario parser (see `config/fuzzing.rs`): no input panics;
    /// every error names `file:line` with a line of the file; every scenario that loads
    /// saves (`scenario_file::to_toml`) and loads back to the same settings.
    #[test]
    fn fuzz_scenario_parser() {
        use proptest::prelude::*;
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

        use crate::config::fuzzing;

        let loaded = AtomicU64::new(0);
        let texts = prop_oneof![
            fuzzing::mutated(fuzzing::seeds("scenario"))
                .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
            scenario_text(),
        ];
        fuzzing::run("fuzz_scenario_parser", texts, |text| {
            let mut s = Settings::default();
            match apply_str(&mut s, &text, "f.toml") {
                Err(e) => {
                    let shown = e.to_string();
                    let line: Option<usize> = shown
                        .strip_prefix("f.toml:")
                        .and_then(|rest| rest.split(':').next())
                        .and_then(|n| n.parse().ok());
                    let lines = text.lines().count().max(1) + 1;
                    prop_assert!(
                        line.is_some_and(|n| (1..=lines).contains(&n)),
                        "{shown:?} for {text:?}"
                    );
                }
                Ok(_) => {
                    loaded.fetch_add(1, Relaxed);
                    let saved = crate::config::scenario_file::to_toml(&s);
                    let mut again = Settings::default();
                    let reloaded = apply_str(&mut again, &saved, "saved.toml");
                    prop_assert!(reloaded.is_ok(), "{reloaded:?} for {saved}");
                    prop_assert_eq!(again, s);
                }
            }
            Ok(())
        });
        println!(
            "fuzz_scenario_parser: {} inputs loaded",
            loaded.load(Relaxed)
        );
    }
}
