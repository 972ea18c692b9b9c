//! The sweep's grid: each `--vary key=spec` parsed into a list of values, every value
//! checked by its knob's own bounds (so a range error reads as it does for `--set`), and
//! the cells, the product of the lists.

use crate::config::knobs::{self, Bounds, Knob};
use crate::config::{ConfigError, Settings, Source};

/// The most cells one sweep may have: 100,000 cells of a 60 s scenario are minutes of
/// simulation; beyond that a typo (a `+` step too small) is more likely than intent.
pub const MAX_CELLS: u64 = 100_000;

/// Why a `--vary` (or the grid they make) was refused; each names the input.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum VaryError {
    #[error("--vary {arg:?}: expected KEY=VALUES (a list a,b,c or a range FROM..TO with xN or +N)")]
    Form { arg: String },
    #[error("--vary {arg:?}: unknown knob {key:?} (`gracetrace knobs` lists them)")]
    UnknownKnob { arg: String, key: String },
    #[error("--vary {arg:?}: empty list of values")]
    Empty { arg: String },
    #[error("--vary {arg:?}: {key} = {value:?} is out of range: expected {expected}")]
    OutOfRange {
        arg: String,
        key: &'static str,
        value: String,
        expected: String,
    },
    #[error("--vary {arg:?}: bad range: {why}")]
    BadRange { arg: String, why: String },
    #[error("--vary {key} is given twice")]
    Twice { key: &'static str },
    #[error("--vary {arg:?}: the range has {values} values; a sweep has at most {MAX_CELLS} cells")]
    RangeTooLong { arg: String, values: u128 },
    #[error("the sweep has {cells} cells ({product}); at most {MAX_CELLS}")]
    TooManyCells { cells: u128, product: String },
    #[error("cell {cell}: {key} = {value:?} is invalid: {allowed}")]
    Cell {
        cell: String,
        key: String,
        value: String,
        allowed: String,
    },
}

/// One varied knob and its values, each in the knob's own spelling (`gracetrace knobs`).
#[derive(Clone, Debug, PartialEq)]
pub struct Vary {
    pub key: &'static str,
    pub values: Vec<String>,
}

impl Vary {
    /// Parses `KEY=a,b,c` or `KEY=FROM..TOxN` / `KEY=FROM..TO+N`.
    pub fn parse(arg: &str) -> Result<Vary, VaryError> {
        let (key, spec) = arg.split_once('=').ok_or_else(|| VaryError::Form {
            arg: arg.to_string(),
        })?;
        let key = key.trim();
        let knob = knobs::find(key).ok_or_else(|| VaryError::UnknownKnob {
            arg: arg.to_string(),
            key: key.to_string(),
        })?;
        let spec = spec.trim();
        let raw = if spec.contains("..") {
            range(arg, knob, spec)?
        } else {
            spec.split(',').map(|v| v.trim().to_string()).collect()
        };
        if raw.iter().all(String::is_empty) {
            return Err(VaryError::Empty {
                arg: arg.to_string(),
            });
        }
        let values = raw
            .iter()
            .map(|value| canonical(arg, knob, value))
            .collect::<Result<_, _>>()?;
        Ok(Vary {
            key: knob.key,
            values,
        })
    }
}

/// The value as the knob spells it once set (`4_096` -> `4096`, `PYTHON` -> `python`),
/// or the knob's own range error.
fn canonical(arg: &str, knob: &'static Knob, value: &str) -> Result<String, VaryError> {
    let mut scratch = Settings::default();
    match knob.set(&mut scratch, value) {
        Ok(()) if !value.is_empty() || matches!(knob.bounds, Bounds::Text(_)) => {
            Ok((knob.get)(&scratch))
        }
        Ok(()) => Err(VaryError::Empty {
            arg: arg.to_string(),
        }),
        Err(invalid) => Err(VaryError::OutOfRange {
            arg: arg.to_string(),
            key: knob.key,
            value: value.to_string(),
            expected: invalid.expected,
        }),
    }
}

/// A number as TOML writes it (`_` separators allowed), finite.
fn number(raw: &str) -> Option<f64> {
    raw.trim()
        .replace('_', "")
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
}

/// `FROM..TOxN` (geometric: FROM, FROM*N, ... up to TO) or `FROM..TO+N` (arithmetic).
/// Whole-number knobs round each value and skip repeats; every value is then checked by
/// the knob like a listed one.
fn range(arg: &str, knob: &'static Knob, spec: &str) -> Result<Vec<String>, VaryError> {
    let bad = |why: String| VaryError::BadRange {
        arg: arg.to_string(),
        why,
    };
    if knob.bounds.numeric().is_none() {
        return Err(bad(format!(
            "{} is not a number ({}): list its values",
            knob.key,
            knob.range()
        )));
    }
    let (from, rest) = spec.split_once("..").unwrap_or((spec, ""));
    let (to, step, geometric) = match (rest.split_once('x'), rest.split_once('+')) {
        (Some((to, n)), None) => (to, n, true),
        (None, Some((to, n))) => (to, n, false),
        _ => return Err(bad("FROM..TO needs one step, xN (geometric) or +N".into())),
    };
    let parsed = |name: &str, raw: &str| {
        number(raw).ok_or_else(|| bad(format!("{name} {:?} is not a number", raw.trim())))
    };
    let (from, to, step) = (
        parsed("FROM", from)?,
        parsed("TO", to)?,
        parsed("step", step)?,
    );
    if from > to {
        return Err(bad(format!("FROM {from} is greater than TO {to}")));
    }
    let count = if geometric {
        if from <= 0.0 || step <= 1.0 {
            return Err(bad(
                "a geometric range needs FROM > 0 and xN with N > 1".into()
            ));
        }
        ((to / from).ln() / step.ln() + 1e-9).floor() + 1.0
    } else {
        if step <= 0.0 {
            return Err(bad("an arithmetic range needs +N with N > 0".into()));
        }
        ((to - from) / step + 1e-9).floor() + 1.0
    };
    if count > MAX_CELLS as f64 {
        return Err(VaryError::RangeTooLong {
            arg: arg.to_string(),
            values: count as u128,
        });
    }
    Ok(steps(knob, from, step, count as u32, geometric))
}

/// The `count` values of a range; whole-number knobs round each and skip repeats.
fn steps(knob: &Knob, from: f64, step: f64, count: u32, geometric: bool) -> Vec<String> {
    let whole = matches!(knob.bounds, Bounds::Int { .. } | Bounds::OptionalInt { .. });
    let mut values: Vec<String> = Vec::new();
    for i in 0..count {
        // Each value from FROM and i, not by accumulating, so 0.1+0.1+0.1 stays 0.3.
        let v = if geometric {
            from * step.powf(f64::from(i))
        } else {
            from + f64::from(i) * step
        };
        let text = if whole {
            format!("{}", v.round())
        } else {
            format!("{}", (v * 1e9).round() / 1e9)
        };
        if values.last() != Some(&text) {
            values.push(text);
        }
    }
    values
}

/// The varied knobs and the cells they make, the last knob varying fastest.
#[derive(Clone, Debug)]
pub struct Grid {
    pub varies: Vec<Vary>,
    cells: usize,
}

impl Grid {
    /// Refuses a knob varied twice and more than [`MAX_CELLS`] cells.
    pub fn new(varies: Vec<Vary>) -> Result<Grid, VaryError> {
        for (i, vary) in varies.iter().enumerate() {
            if varies[..i].iter().any(|v| v.key == vary.key) {
                return Err(VaryError::Twice { key: vary.key });
            }
        }
        let cells = varies
            .iter()
            .fold(1u128, |n, v| n.saturating_mul(v.values.len() as u128));
        if cells > u128::from(MAX_CELLS) {
            let product = varies
                .iter()
                .map(|v| format!("{} values of {}", v.values.len(), v.key))
                .collect::<Vec<_>>()
                .join(" x ");
            return Err(VaryError::TooManyCells { cells, product });
        }
        Ok(Grid {
            varies,
            cells: cells as usize,
        })
    }

    pub fn len(&self) -> usize {
        self.cells
    }

    pub fn is_empty(&self) -> bool {
        self.cells == 0
    }

    /// The keys varied, in the order given.
    pub fn keys(&self) -> Vec<&'static str> {
        self.varies.iter().map(|v| v.key).collect()
    }

    /// Cell `index`'s value of each varied knob.
    pub fn values(&self, index: usize) -> Vec<(&'static str, &str)> {
        let mut rest = index;
        let mut values: Vec<(&'static str, &str)> = self
            .varies
            .iter()
            .rev()
            .map(|v| {
                let value = &v.values[rest % v.values.len()];
                rest /= v.values.len();
                (v.key, value.as_str())
            })
            .collect();
        values.reverse();
        values
    }

    /// `base` with cell `index`'s values. When the queue is varied below the batch size
    /// and the batch size is not varied too, the batch follows the queue down (both SDKs
    /// refuse a batch larger than the queue), as the window's slider does.
    pub fn settings(&self, base: &Settings, index: usize) -> Result<Settings, VaryError> {
        let mut settings = base.clone();
        let values = self.values(index);
        let cell = describe(&values);
        let invalid = |e: ConfigError| VaryError::Cell {
            cell: cell.clone(),
            key: e.key,
            value: e.value,
            allowed: e.allowed,
        };
        for (key, value) in &values {
            settings
                .set(key, value, Source::CommandLine)
                .map_err(invalid)?;
        }
        if !values
            .iter()
            .any(|(k, _)| *k == "batch.max_export_batch_size")
        {
            settings.batch.fit_batch_to_queue();
        }
        settings.validate(Source::CommandLine).map_err(invalid)?;
        Ok(settings)
    }
}

/// `key=value key=value`, how a cell is named in errors and progress.
pub fn describe(values: &[(&str, &str)]) -> String {
    values
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(arg: &str) -> Vec<String> {
        Vary::parse(arg).unwrap().values
    }

    #[test]
    fn lists_and_ranges_give_the_knobs_own_spelling() {
        assert_eq!(values("batch.max_queue_size=4_096, 512"), ["4096", "512"]);
        assert_eq!(
            values("batch.max_queue_size=512..8192x2"),
            ["512", "1024", "2048", "4096", "8192"]
        );
        assert_eq!(
            values("tracing.sample_rate=0.1..0.5+0.1"),
            ["0.1", "0.2", "0.3", "0.4", "0.5"]
        );
        // Whole numbers are rounded and repeats skipped.
        assert_eq!(
            values("workload.concurrency=1..4x1.2"),
            ["1", "2", "3", "4"]
        );
        assert_eq!(values("tracing.semantics=RUST,python"), ["rust", "python"]);
        assert_eq!(values("shutdown.at_s=-1,2"), ["-1", "2"]);
    }

    #[test]
    fn bad_input_names_itself() {
        let err = |arg: &str| Vary::parse(arg).unwrap_err().to_string();
        assert!(err("batch.queue=1").contains("unknown knob \"batch.queue\""));
        assert!(err("batch.max_queue_size=").contains("empty list"));
        assert!(err("batch.max_queue_size").contains("expected KEY=VALUES"));
        assert_eq!(
            err("tracing.sample_rate=0.5,1.5"),
            "--vary \"tracing.sample_rate=0.5,1.5\": tracing.sample_rate = \"1.5\" is out of \
             range: expected a number from 0 to 1"
        );
        assert!(err("batch.max_queue_size=0..8x2").contains("FROM > 0"));
        assert!(err("batch.max_queue_size=8..1x2").contains("greater than TO"));
        assert!(err("batch.max_queue_size=1..8").contains("needs one step"));
        assert!(err("batch.max_queue_size=1..a+1").contains("TO \"a\""));
        assert!(err("tracing.semantics=a..b+1").contains("not a number"));
        assert!(err("batch.max_queue_size=1..10000000+1").contains("has 10000000 values"));
    }

    #[test]
    fn the_grid_is_the_product_and_refuses_too_many_cells() {
        let a = Vary::parse("batch.max_queue_size=64,128").unwrap();
        let b = Vary::parse("tracing.sample_rate=0.5,1,0.25").unwrap();
        let grid = Grid::new(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(grid.len(), 6);
        assert_eq!(
            grid.values(4),
            [
                ("batch.max_queue_size", "128"),
                ("tracing.sample_rate", "1")
            ]
        );
        let s = grid.settings(&Settings::default(), 4).unwrap();
        assert_eq!(s.batch.max_queue_size, 128);
        // The default batch (512) followed the queue down.
        assert_eq!(s.batch.max_export_batch_size, 128);
        assert_eq!(
            Grid::new(vec![a.clone(), a.clone()]).unwrap_err(),
            VaryError::Twice {
                key: "batch.max_queue_size"
            }
        );
        let big = Vary::parse("batch.max_queue_size=1..1000+1").unwrap();
        let big2 = Vary::parse("batch.schedule_delay_ms=1..101+1").unwrap();
        assert_eq!(
            Grid::new(vec![big, big2]).unwrap_err(),
            VaryError::TooManyCells {
                cells: 101_000,
                product: "1000 values of batch.max_queue_size x 101 values of \
                          batch.schedule_delay_ms"
                    .into()
            }
        );
        let batch = Vary::parse("batch.max_export_batch_size=1024").unwrap();
        let grid = Grid::new(vec![a, batch]).unwrap();
        let e = grid.settings(&Settings::default(), 0).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "cell batch.max_queue_size=64 batch.max_export_batch_size=1024: \
                 batch.max_export_batch_size = \"1024\" is invalid"
            ),
            "{e}"
        );
    }
}
