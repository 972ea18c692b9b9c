//! `gracetrace sweep merge`: the parts of one sharded sweep joined into the [`Sweep`] one
//! unsharded run would have made, after checking that they are of one sweep and one
//! calibration, and that every shard is there exactly once.

use super::part::Part;
use super::{Cell, Shard, Sweep};
use crate::config::knobs;

/// Why parts cannot be joined; each names the file or the shard.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no parts to merge")]
    NoParts,
    #[error(
        "{file} is a part of a different sweep than {first} (fingerprint {theirs}, not \
         {ours}): the scenario, --set, the environment, --vary or --repeats differ"
    )]
    OtherSweep {
        file: String,
        first: String,
        ours: String,
        theirs: String,
    },
    #[error(
        "{file} and {first} were calibrated apart (their calibrations differ): make one \
         calibration file and pass it to every shard with --calibration FILE"
    )]
    Calibration { file: String, first: String },
    #[error("{file} is shard {shard}, but {first} is shard {theirs}: every part needs one N")]
    Count {
        file: String,
        shard: Shard,
        first: String,
        theirs: Shard,
    },
    #[error("shard {shard} is given twice: {first} and {file}")]
    Twice {
        shard: Shard,
        first: String,
        file: String,
    },
    #[error("shard {shard} is missing (given: {given})")]
    Missing { shard: Shard, given: String },
    #[error("{file}: {why}")]
    Cells { file: String, why: String },
}

/// Joins `parts` (each with the file it came from) into the whole sweep, its cells in
/// grid order.
pub fn merge(parts: Vec<(String, Part)>) -> Result<Sweep, MergeError> {
    let (first_file, first) = parts.first().ok_or(MergeError::NoParts)?;
    for (file, part) in &parts[1..] {
        same_sweep((first_file, first), (file, part))?;
    }
    all_shards(&parts)?;
    let varied = parts_keys(first_file, &first.varied)?;
    let mut cells: Vec<Cell> = Vec::with_capacity(first.cells_total);
    for (file, part) in &parts {
        check_cells(file, part)?;
        cells.extend(part.cells.iter().map(|c| {
            let mut runs = c.runs.clone();
            runs.sort_by_key(|r| (r.lost(), r.seed));
            Cell {
                index: c.index,
                values: varied.iter().copied().zip(c.values.clone()).collect(),
                batch_size: c.max_export_batch_size,
                runs,
            }
        }));
    }
    cells.sort_by_key(|c| c.index);
    Ok(Sweep {
        scenario: first.scenario.clone(),
        semantics: first.semantics.name(),
        varied,
        repeats: first.repeats,
        costs: first.costs(),
        cells,
    })
}

/// The same definition (first half of the fingerprint), the same calibration (second
/// half) and the same shard count as the first part.
fn same_sweep(first: (&str, &Part), other: (&str, &Part)) -> Result<(), MergeError> {
    let ((first_file, a), (file, b)) = (first, other);
    let (a_def, a_cal) = a
        .fingerprint
        .split_once('-')
        .unwrap_or((&a.fingerprint, ""));
    let (b_def, b_cal) = b
        .fingerprint
        .split_once('-')
        .unwrap_or((&b.fingerprint, ""));
    if a_def != b_def {
        return Err(MergeError::OtherSweep {
            file: file.into(),
            first: first_file.into(),
            ours: a.fingerprint.clone(),
            theirs: b.fingerprint.clone(),
        });
    }
    if a_cal != b_cal {
        return Err(MergeError::Calibration {
            file: file.into(),
            first: first_file.into(),
        });
    }
    if a.shard.count != b.shard.count {
        return Err(MergeError::Count {
            file: file.into(),
            shard: b.shard,
            first: first_file.into(),
            theirs: a.shard,
        });
    }
    Ok(())
}

/// Every shard `0..N` exactly once.
fn all_shards(parts: &[(String, Part)]) -> Result<(), MergeError> {
    let count = parts[0].1.shard.count;
    let mut seen: Vec<Option<&str>> = vec![None; count];
    for (file, part) in parts {
        // Shard::parse keeps K below N, but a part is a file anyone can edit.
        let Some(slot) = seen.get_mut(part.shard.index) else {
            return Err(MergeError::Cells {
                file: file.clone(),
                why: format!("shard {} has K past N", part.shard),
            });
        };
        if let Some(first) = slot {
            return Err(MergeError::Twice {
                shard: part.shard,
                first: first.to_string(),
                file: file.clone(),
            });
        }
        *slot = Some(file);
    }
    if let Some(index) = seen.iter().position(Option::is_none) {
        let given: Vec<String> = parts
            .iter()
            .map(|(file, part)| format!("{} in {file}", part.shard))
            .collect();
        return Err(MergeError::Missing {
            shard: Shard { index, count },
            given: given.join(", "),
        });
    }
    Ok(())
}

/// The varied keys as the knob table spells them.
fn parts_keys(file: &str, varied: &[String]) -> Result<Vec<&'static str>, MergeError> {
    varied
        .iter()
        .map(|key| {
            knobs::find(key)
                .map(|k| k.key)
                .ok_or_else(|| MergeError::Cells {
                    file: file.into(),
                    why: format!("varies {key:?}, which is no knob of this gracetrace"),
                })
        })
        .collect()
}

/// A part holds exactly its shard's cells, each with a value per key and every repeat.
fn check_cells(file: &str, part: &Part) -> Result<(), MergeError> {
    let expected: Vec<usize> = part.shard.cells(part.cells_total).collect();
    let found: Vec<usize> = part.cells.iter().map(|c| c.index).collect();
    let why = if found != expected {
        format!(
            "shard {} of {} cells should hold cells {:?}, but holds {:?}",
            part.shard, part.cells_total, expected, found
        )
    } else if let Some(c) = part
        .cells
        .iter()
        .find(|c| c.values.len() != part.varied.len())
    {
        format!(
            "cell {} has {} values for {} keys",
            c.index,
            c.values.len(),
            part.varied.len()
        )
    } else if let Some(c) = part.cells.iter().find(|c| c.runs.len() != part.repeats) {
        format!(
            "cell {} has {} runs, not {}",
            c.index,
            c.runs.len(),
            part.repeats
        )
    } else {
        return Ok(());
    };
    Err(MergeError::Cells {
        file: file.into(),
        why,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::sweep::part::{Part, fingerprint};
    use crate::session::sweep::{Grid, Vary, output, run, run_shard};
    use crate::sim::{TEST_COSTS, test_settings};

    #[test]
    fn parts_written_and_read_back_merge_into_the_whole_sweep() {
        let base = test_settings(&[
            ("workload.duration_s", "2"),
            ("collector.latency_ms", "300"),
        ]);
        let grid = Grid::new(vec![
            Vary::parse("batch.max_queue_size=64,512,4096").unwrap(),
            Vary::parse("batch.schedule_delay_ms=100,5000").unwrap(),
        ])
        .unwrap();
        let whole = run(&base, &grid, 2, &TEST_COSTS, None, &|_, _| {}).unwrap();
        let print = fingerprint(&base, &grid, 2, &TEST_COSTS).unwrap();
        let parts: Vec<(String, Part)> = (0..4)
            .rev()
            .map(|index| {
                let shard = Shard { index, count: 4 };
                let swept =
                    run_shard(&base, &grid, 2, &TEST_COSTS, None, shard, &|_, _| {}).unwrap();
                let part = Part::new(&swept, shard, grid.len(), print.clone());
                let text = serde_json::to_string(&part).unwrap();
                let file = format!("part-{index}.json");
                let read = Part::read(&file, &text).unwrap();
                (file, read)
            })
            .collect();
        let merged = merge(parts.clone()).unwrap();
        assert_eq!(output::json(&merged), output::json(&whole));
        assert_eq!(output::csv(&merged), output::csv(&whole));
        assert_eq!(output::table(&merged), output::table(&whole));

        let mut edited = parts;
        edited[0].1.cells.pop();
        let e = merge(edited).unwrap_err().to_string();
        assert!(
            e.starts_with("part-3.json: shard 3/4 of 6 cells should hold"),
            "{e}"
        );
    }
}
