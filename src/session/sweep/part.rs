//! A shard's share of a sweep written down (`sweep --shard K/N --json FILE`): what the
//! sweep was (scenario, semantics, varied keys, repeats, calibration, cell count and a
//! fingerprint of its definition) and every run of the shard's cells, so that
//! [`mod@super::merge`] can rebuild the whole sweep from the parts. Also reads the calibration
//! back out of any sweep JSON or part (`--calibration FILE`), so that every shard charges
//! the same export costs.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Cell, Grid, Run, Shard, Sweep};
use crate::config::{Semantics, Settings};
use crate::sim::Calibration;

/// The `format` of a part: how `merge` tells a part from any other JSON.
pub const FORMAT: &str = "gracetrace sweep part 1";

/// One shard's cells and what the whole sweep was.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Part {
    /// [`FORMAT`].
    pub format: String,
    pub scenario: String,
    pub semantics: Semantics,
    pub varied: Vec<String>,
    pub repeats: usize,
    pub calibration: Calibration,
    /// `bytes_per_span`, `per_batch_ms` and `per_span_ms` as IEEE-754 bits. serde_json
    /// reads a decimal back to the nearest `f64` only most of the time (off by one unit in
    /// the last place for some 17-digit numbers); the bits make the merged sweep's
    /// calibration, and so its JSON and peak bytes, exactly the shards' own.
    pub calibration_bits: [u64; 3],
    /// Cells in the whole sweep (every shard's).
    pub cells_total: usize,
    pub shard: Shard,
    /// See [`fingerprint`].
    pub fingerprint: String,
    pub cells: Vec<PartCell>,
}

/// One cell of a part, with every run (ordered by spans lost, then seed).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PartCell {
    pub index: usize,
    /// One value per varied key, in the order of `varied`.
    pub values: Vec<String>,
    pub max_export_batch_size: usize,
    pub runs: Vec<Run>,
}

/// Why a part or a calibration file could not be read; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum PartError {
    #[error("{file}: not JSON: {error}")]
    NotJson {
        file: String,
        error: serde_json::Error,
    },
    #[error("{file} is not a sweep part: it is not JSON ({error})")]
    PartNotJson {
        file: String,
        error: serde_json::Error,
    },
    #[error(
        "{file} is not a sweep part: it has no \"format\": {FORMAT:?} (a part is what \
         `gracetrace sweep --shard K/N --json FILE` writes)"
    )]
    NotPart { file: String },
    #[error("{file}: a sweep part that cannot be read: {error}")]
    Broken {
        file: String,
        error: serde_json::Error,
    },
    #[error(
        "--calibration {file}: no \"calibration\" in it (expected what `gracetrace sweep \
         --json` wrote, a sweep part, or a `run --clock virtual --json` report)"
    )]
    NoCalibration { file: String },
    #[error("--calibration {file}: the \"calibration\" cannot be read: {error}")]
    BadCalibration {
        file: String,
        error: serde_json::Error,
    },
}

/// The sweep's identity: a hash of its definition (the base settings after the scenario,
/// the environment and `--set`; each varied key with its values; the repeats), a dash,
/// and a hash of the calibration. Parts of one sweep share both halves; [`mod@super::merge`]
/// tells "another sweep" (the first half) from "calibrated apart" (the second).
pub fn fingerprint(
    base: &Settings,
    grid: &Grid,
    repeats: usize,
    costs: &Calibration,
) -> Result<String, serde_json::Error> {
    let lists: Vec<Value> = grid
        .varies
        .iter()
        .map(|v| json!([v.key, v.values]))
        .collect();
    let definition = serde_json::to_string(&json!({
        "settings": base,
        "vary": lists,
        "repeats": repeats,
    }))?;
    let [a, b, c] = bits(costs);
    // The model's times (if any) as written: shards that read one calibration file read
    // the same numbers, and shards that measured apart differ here.
    let model = serde_json::to_string(&costs.model)?;
    let calibration = format!("{a:x} {b:x} {c:x} {} {model}", costs.exports_measured);
    Ok(format!(
        "{:016x}-{:016x}",
        fnv1a(definition.as_bytes()),
        fnv1a(calibration.as_bytes())
    ))
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher promises neither),
/// and enough to tell one sweep from another by accident; it is no defence against a
/// forged part.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn bits(c: &Calibration) -> [u64; 3] {
    [
        c.bytes_per_span.to_bits(),
        c.per_batch_ms.to_bits(),
        c.per_span_ms.to_bits(),
    ]
}

fn from_bits(mut c: Calibration, bits: [u64; 3]) -> Calibration {
    c.bytes_per_span = f64::from_bits(bits[0]);
    c.per_batch_ms = f64::from_bits(bits[1]);
    c.per_span_ms = f64::from_bits(bits[2]);
    c
}

impl Part {
    /// `sweep` (a shard's run) written down as `shard` of a sweep of `cells_total` cells.
    pub fn new(sweep: &Sweep, shard: Shard, cells_total: usize, fingerprint: String) -> Part {
        Part {
            format: FORMAT.into(),
            scenario: sweep.scenario.clone(),
            semantics: semantics(sweep.semantics),
            varied: sweep.varied.iter().map(|k| k.to_string()).collect(),
            repeats: sweep.repeats,
            calibration: sweep.costs.clone(),
            calibration_bits: bits(&sweep.costs),
            cells_total,
            shard,
            fingerprint,
            cells: sweep.cells.iter().map(part_cell).collect(),
        }
    }

    /// Reads `text`, the contents of `file`, as a part.
    pub fn read(file: &str, text: &str) -> Result<Part, PartError> {
        let value: Value = serde_json::from_str(text).map_err(|error| PartError::PartNotJson {
            file: file.into(),
            error,
        })?;
        if value.get("format").and_then(Value::as_str) != Some(FORMAT) {
            return Err(PartError::NotPart { file: file.into() });
        }
        serde_json::from_value(value).map_err(|error| PartError::Broken {
            file: file.into(),
            error,
        })
    }

    /// The calibration, bit for bit as the shard charged it.
    pub fn costs(&self) -> Calibration {
        from_bits(self.calibration.clone(), self.calibration_bits)
    }
}

/// The semantics a sweep names ([`Semantics::name`]); python for a name this build does
/// not have, which cannot happen for a sweep this build ran.
fn semantics(name: &str) -> Semantics {
    Semantics::ALL
        .into_iter()
        .find(|s| s.name() == name)
        .unwrap_or(Semantics::Python)
}

fn part_cell(cell: &Cell) -> PartCell {
    PartCell {
        index: cell.index,
        values: cell.values.iter().map(|(_, v)| v.clone()).collect(),
        max_export_batch_size: cell.batch_size,
        runs: cell.runs.clone(),
    }
}

/// The calibration in `text`, the contents of `file`: a sweep's JSON, a part (bit for bit)
/// or a virtual run's report, each has one under `calibration`.
pub fn read_calibration(file: &str, text: &str) -> Result<Calibration, PartError> {
    let value: Value = serde_json::from_str(text).map_err(|error| PartError::NotJson {
        file: format!("--calibration {file}"),
        error,
    })?;
    let found = value.get("calibration").filter(|c| !c.is_null());
    let found = found.ok_or_else(|| PartError::NoCalibration { file: file.into() })?;
    let bad = |error| PartError::BadCalibration {
        file: file.into(),
        error,
    };
    let costs: Calibration = serde_json::from_value(found.clone()).map_err(bad)?;
    match value.get("calibration_bits") {
        Some(b) => Ok(from_bits(
            costs,
            serde_json::from_value(b.clone()).map_err(bad)?,
        )),
        None => Ok(costs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::sweep::Vary;
    use crate::sim::TEST_COSTS;

    fn grid(arg: &str) -> Grid {
        Grid::new(vec![Vary::parse(arg).unwrap()]).unwrap()
    }

    #[test]
    fn the_fingerprint_changes_with_the_definition_and_the_calibration_apart() {
        let base = Settings::default();
        let g = grid("batch.max_queue_size=64,128");
        let print = fingerprint(&base, &g, 2, &TEST_COSTS).unwrap();
        assert_eq!(print, fingerprint(&base, &g, 2, &TEST_COSTS).unwrap());
        let (def, cal) = print.split_once('-').unwrap();
        let other = fingerprint(&base, &grid("batch.max_queue_size=64,256"), 2, &TEST_COSTS);
        let other = other.unwrap();
        assert!(
            !other.starts_with(def) && other.ends_with(cal),
            "{print} {other}"
        );
        assert!(
            !fingerprint(&base, &g, 3, &TEST_COSTS)
                .unwrap()
                .starts_with(def)
        );
        let mut costs = TEST_COSTS.clone();
        costs.per_span_ms = f64::from_bits(costs.per_span_ms.to_bits() + 1);
        let recal = fingerprint(&base, &g, 2, &costs).unwrap();
        assert!(
            recal.starts_with(def) && !recal.ends_with(cal),
            "{print} {recal}"
        );
    }

    #[test]
    fn a_calibration_is_read_from_a_sweep_or_bit_for_bit_from_a_part() {
        let mut costs = TEST_COSTS.clone();
        costs.per_batch_ms = 1.460_123_456_789_012_3;
        let sweep = json!({"scenario": "x", "calibration": costs});
        let read = read_calibration("s.json", &sweep.to_string()).unwrap();
        assert_eq!(read.exports_measured, costs.exports_measured);
        let part = json!({"calibration": costs, "calibration_bits": bits(&costs)});
        assert_eq!(
            read_calibration("p.json", &part.to_string()).unwrap(),
            costs
        );
        let e = read_calibration("r.json", r#"{"calibration": null}"#).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--calibration r.json: no \"calibration\"")
        );
        let e = read_calibration("n.txt", "not json").unwrap_err();
        assert!(
            e.to_string().starts_with("--calibration n.txt: not JSON"),
            "{e}"
        );
    }

    #[test]
    fn only_a_part_reads_as_a_part() {
        let e = Part::read("s.json", r#"{"scenario": "x"}"#).unwrap_err();
        assert!(
            e.to_string().starts_with("s.json is not a sweep part"),
            "{e}"
        );
        let broken = json!({"format": FORMAT, "scenario": 1}).to_string();
        let e = Part::read("b.json", &broken).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("b.json: a sweep part that cannot"),
            "{e}"
        );
    }
}
