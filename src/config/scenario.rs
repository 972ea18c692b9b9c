//! Scenario files: TOML whose tables are the knob sections (`[tracing]`, `[batch]`, ...).
//!
//! The file is parsed with spans so that every error names `file:line`, and each value is
//! handed to the same setter as the environment and `--set`, so the rules cannot drift.

use std::path::Path;

use toml::de::{DeTable, DeValue};

use super::{ConfigError, Settings, Source};

/// Reads and applies a scenario file.
pub fn apply_file(settings: &mut Settings, path: &Path) -> Result<(), ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        source: Source::File {
            path: shown.clone(),
            line: 0,
        },
        key: String::new(),
        value: String::new(),
        allowed: format!("cannot read the scenario file: {e}"),
    })?;
    apply_str(settings, &text, &shown)
}

/// Applies scenario text; `path` is only used in errors.
pub fn apply_str(settings: &mut Settings, text: &str, path: &str) -> Result<(), ConfigError> {
    let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    let source = |line: usize| Source::File {
        path: path.to_string(),
        line,
    };
    let root = DeTable::parse(text).map_err(|e| ConfigError {
        source: source(e.span().map_or(1, |s| line_of(s.start))),
        key: String::new(),
        value: String::new(),
        allowed: format!("not valid TOML: {}", e.message()),
    })?;

    let mut leaves = Vec::new();
    collect_leaves(root.get_ref(), "", &mut leaves);
    for (key, value) in leaves {
        let line = line_of(value.span().start);
        let raw = match value.get_ref() {
            DeValue::String(s) => s.to_string(),
            DeValue::Integer(i) => i.as_str().to_string(),
            DeValue::Float(f) => f.as_str().to_string(),
            DeValue::Boolean(b) => b.to_string(),
            other => {
                return Err(ConfigError {
                    source: source(line),
                    key,
                    value: other.type_str().to_string(),
                    allowed: "expected a string, a number or a boolean".into(),
                });
            }
        };
        settings.set(&key, &raw, source(line))?;
    }
    Ok(())
}

type Leaf<'a> = (String, &'a toml::Spanned<DeValue<'a>>);

/// Flattens nested tables into `section.key` leaves, in file order.
fn collect_leaves<'a>(table: &'a DeTable<'a>, prefix: &str, out: &mut Vec<Leaf<'a>>) {
    let mut entries: Vec<_> = table.iter().collect();
    entries.sort_by_key(|(_, v)| v.span().start);
    for (key, value) in entries {
        let full = if prefix.is_empty() {
            key.get_ref().to_string()
        } else {
            format!("{prefix}.{}", key.get_ref())
        };
        match value.get_ref() {
            DeValue::Table(inner) => collect_leaves(inner, &full, out),
            _ => out.push((full, value)),
        }
    }
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
}
