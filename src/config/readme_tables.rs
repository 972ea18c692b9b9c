//! The README's two reference tables checked against the code (tests only): the keys of
//! the "Scenarios" TOML block against the knob table, and the "Environment variables"
//! rows against the variables `env` reads, so the README cannot drift from
//! `gracetrace knobs`.

use std::collections::BTreeSet;

use super::knobs::KNOBS;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The lines of the README section that starts with `heading`, up to the next `## `.
fn section<'a>(readme: &'a str, heading: &str) -> Vec<&'a str> {
    let mut lines = readme.lines().skip_while(|l| l.trim() != heading);
    assert!(lines.next().is_some(), "README has no {heading:?}");
    lines.take_while(|l| !l.starts_with("## ")).collect()
}

/// The keys of the ```toml block in "## Scenarios": `name = ..`, then `[section]  # key
/// (note), key, ...`, continued on `#` lines.
fn readme_scenario_keys(readme: &str) -> BTreeSet<String> {
    let lines = section(readme, "## Scenarios");
    let block = lines
        .iter()
        .skip_while(|l| !l.starts_with("```toml"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"));
    let mut keys = BTreeSet::new();
    let mut table = String::new();
    for line in block {
        let (head, comment) = line.split_once('#').unwrap_or((line, ""));
        let head = head.trim();
        if let Some(name) = head.strip_prefix('[') {
            table = name.trim_end_matches(']').to_string();
        } else if let Some((key, _)) = head.split_once('=') {
            keys.insert(key.trim().to_string());
        }
        for item in without_parentheses(comment).split(',') {
            if let Some(word) = item.split_whitespace().next() {
                keys.insert(format!("{table}.{word}"));
            }
        }
    }
    keys
}

fn without_parentheses(text: &str) -> String {
    let mut depth = 0;
    text.chars()
        .filter(|&c| {
            depth += match c {
                '(' => 1,
                ')' => -1,
                _ => 0,
            };
            depth == 0 && c != ')'
        })
        .collect()
}

/// `(variable, knob key)` of every row of the table in "## Environment variables"; a row
/// may name several variables.
fn readme_env_rows(readme: &str) -> BTreeSet<(String, String)> {
    let mut rows = BTreeSet::new();
    for line in section(readme, "## Environment variables") {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let [_, vars, key, ..] = cells[..] else {
            continue;
        };
        if !vars.starts_with('`') {
            continue;
        }
        for var in vars.split('`').skip(1).step_by(2) {
            rows.insert((var.to_string(), key.to_string()));
        }
    }
    rows
}

/// The README's scenario keys and environment table say what `gracetrace knobs` says.
#[test]
fn readme_lists_every_knob_and_variable() {
    let readme = readme();
    let documented = readme_scenario_keys(&readme);
    let knobs: BTreeSet<String> = KNOBS.iter().map(|k| k.key.to_string()).collect();
    assert_eq!(
        documented.difference(&knobs).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "README \"Scenarios\" lists keys that are not knobs"
    );
    assert_eq!(
        knobs.difference(&documented).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "knobs missing from README \"Scenarios\""
    );
    let table = readme_env_rows(&readme);
    let read: BTreeSet<(String, String)> = KNOBS
        .iter()
        .filter_map(|k| Some((k.env?.to_string(), k.key.to_string())))
        .chain(
            super::env::SPECIAL
                .iter()
                .map(|(var, key)| (var.to_string(), key.to_string())),
        )
        .collect();
    assert_eq!(
        table.difference(&read).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "README \"Environment variables\" rows that gracetrace does not read so"
    );
    assert_eq!(
        read.difference(&table).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "variables missing from README \"Environment variables\""
    );
}
