//! A finished sweep written out: the table a person reads, the JSON and the CSV a
//! notebook reads. All three show the same runs: per cell the median run by spans lost
//! and, with several seeds, the worst.

use serde_json::{Map, Value, json};

use super::{Cell, Run, Sweep};
use crate::config::knobs;
use crate::session::virtual_clock::span_report;

const MIB: f64 = 1024.0 * 1024.0;

/// `exit` or `SIGKILL`: how the run ended (a run without a shutdown exits cleanly).
fn end(run: &Run) -> &'static str {
    if run.outcome.killed {
        "SIGKILL"
    } else {
        "exit"
    }
}

fn peak_bytes(sweep: &Sweep, run: &Run) -> f64 {
    run.outcome.peak_queue as f64 * sweep.costs.bytes_per_span
}

/// The table: a header naming the calibration, one row per cell, and what the columns mean.
/// A steady-state sweep says so in its header and adds each cell's rates per second.
pub fn table(sweep: &Sweep) -> String {
    let many = sweep.repeats > 1;
    let steady = sweep.steady();
    let mut header: Vec<String> = sweep.varied.iter().map(|k| k.to_string()).collect();
    header.extend(
        [
            "created",
            "dropped (full)",
            "export failed",
            "lost at kill",
            "received",
            "loss %",
            "peak queue",
            "end",
            "peak queue MiB",
        ]
        .map(String::from),
    );
    if many {
        header.extend(["worst loss %", "worst end"].map(String::from));
    }
    if steady.is_some() {
        header.extend(["created/s", "exported/s", "dropped/s", "lost/s"].map(String::from));
    }
    let mut rows = vec![header];
    rows.extend(sweep.cells.iter().map(|cell| row(sweep, cell, many)));
    let mut out = format!(
        "sweep {} ({} semantics, virtual clock): {} cells x {} arrival seed{}{}\n",
        sweep.scenario,
        sweep.semantics,
        sweep.cells.len(),
        sweep.repeats,
        if many { "s" } else { "" },
        steady.map_or(String::new(), |s| format!("; {}", s.describe()))
    );
    out += &aligned(&rows);
    out += &notes(sweep, many);
    out
}

fn row(sweep: &Sweep, cell: &Cell, many: bool) -> Vec<String> {
    let (m, w) = (cell.median(), cell.worst());
    let s = &m.outcome.spans;
    let mut row: Vec<String> = cell.values.iter().map(|(_, v)| v.clone()).collect();
    row.extend([
        s.created.to_string(),
        s.dropped_queue_full.to_string(),
        s.export_failed.to_string(),
        s.lost_at_kill.to_string(),
        s.received.to_string(),
        format!("{:.2}", m.loss_pct()),
        m.outcome.peak_queue.to_string(),
        end(m).into(),
        format!("{:.2}", peak_bytes(sweep, m) / MIB),
    ]);
    if many {
        row.extend([format!("{:.2}", w.loss_pct()), end(w).into()]);
    }
    if let Some(s) = &m.outcome.steady {
        row.extend(
            [
                s.created_per_s,
                s.exported_per_s,
                s.dropped_per_s,
                s.lost_per_s,
            ]
            .map(|rate| format!("{rate:.1}")),
        );
    }
    row
}

/// Columns padded to their widest cell, right-aligned.
fn aligned(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:>w$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

fn notes(sweep: &Sweep, many: bool) -> String {
    let c = &sweep.costs;
    let mut out = String::new();
    if many {
        out += &format!(
            "counts are each cell's median run of {} seeds, ranked by spans lost; worst: the \
             run that lost the most.\n",
            sweep.repeats
        );
    }
    if let Some(steady) = sweep.steady() {
        out += &format!(
            "{}: the traffic runs on and is never shut down, as the window's live runner's; \
             counts are the whole run's (warm-up included), the rates per second the \
             {} s after the warm-up's.\n",
            steady.describe(),
            steady.measured_s
        );
    }
    out += &format!(
        "loss %: sampled spans dropped, failed or lost at kill. peak queue MiB: peak spans x \
         {:.0} B/span, the OTLP/HTTP protobuf body size per span that calibration measured \
         (the wire size; the SDK holds a span in memory as a larger object).\n\
         calibration: one export takes {:.2} ms + {:.4} ms/span (a real run, {} exports).\n",
        c.bytes_per_span, c.per_batch_ms, c.per_span_ms, c.exports_measured
    );
    out
}

/// A value as JSON: a number for a number knob, text otherwise.
fn value_json(key: &str, value: &str) -> Value {
    let numeric = knobs::find(key).is_some_and(|k| k.bounds.numeric().is_some());
    if numeric {
        if let Ok(n) = value.parse::<i64>() {
            return json!(n);
        }
        if let Ok(n) = value.parse::<u64>() {
            return json!(n);
        }
        if let Some(n) = value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    json!(value)
}

fn run_json(sweep: &Sweep, run: &Run) -> Value {
    json!({
        "seed": run.seed,
        "spans": span_report(&run.outcome),
        "killed": run.outcome.killed,
        "end": end(run),
        "peak_queue": run.outcome.peak_queue,
        "peak_queue_bytes": peak_bytes(sweep, run),
        "lost": run.lost(),
        "loss_pct": run.loss_pct(),
        "steady": run.outcome.steady,
    })
}

/// `{"scenario", "varied": [keys], "cells": [{"values": {key: value}, "spans", "killed",
/// "peak_queue", ..., "worst": {..}}]}`: a cell's top-level fields are its median run's.
pub fn json(sweep: &Sweep) -> Value {
    let cells: Vec<Value> = sweep
        .cells
        .iter()
        .map(|cell| {
            let values: Map<String, Value> = cell
                .values
                .iter()
                .map(|(k, v)| (k.to_string(), value_json(k, v)))
                .collect();
            let mut out = run_json(sweep, cell.median());
            out["values"] = Value::Object(values);
            out["max_export_batch_size"] = json!(cell.batch_size);
            out["worst"] = run_json(sweep, cell.worst());
            out
        })
        .collect();
    json!({
        "scenario": sweep.scenario,
        "semantics": sweep.semantics,
        "clock": "virtual",
        "varied": sweep.varied,
        "repeats": sweep.repeats,
        "calibration": sweep.costs,
        "cells": cells,
    })
}

/// The CSV's columns after the varied keys.
const CSV_COLUMNS: [&str; 21] = [
    "seed",
    "created",
    "sampled",
    "not_sampled",
    "exported",
    "received",
    "dropped_queue_full",
    "dropped_after_shutdown",
    "export_failed",
    "lost_at_kill",
    "queued",
    "lost",
    "loss_pct",
    "peak_queue",
    "peak_queue_bytes",
    "killed",
    "max_export_batch_size",
    "worst_seed",
    "worst_lost",
    "worst_loss_pct",
    "worst_killed",
];

/// One header line, then one row per cell (its median run, and the worst's loss).
pub fn csv(sweep: &Sweep) -> String {
    let mut lines = vec![
        sweep
            .varied
            .iter()
            .copied()
            .chain(CSV_COLUMNS)
            .map(field)
            .collect::<Vec<_>>()
            .join(","),
    ];
    for cell in &sweep.cells {
        let (m, w) = (cell.median(), cell.worst());
        let s = &m.outcome.spans;
        let numbers = [
            m.seed.to_string(),
            s.created.to_string(),
            s.sampled.to_string(),
            s.not_sampled.to_string(),
            s.exported.to_string(),
            s.received.to_string(),
            s.dropped_queue_full.to_string(),
            s.dropped_after_shutdown.to_string(),
            s.export_failed.to_string(),
            s.lost_at_kill.to_string(),
            s.queued.to_string(),
            m.lost().to_string(),
            m.loss_pct().to_string(),
            m.outcome.peak_queue.to_string(),
            peak_bytes(sweep, m).to_string(),
            m.outcome.killed.to_string(),
            cell.batch_size.to_string(),
            w.seed.to_string(),
            w.lost().to_string(),
            w.loss_pct().to_string(),
            w.outcome.killed.to_string(),
        ];
        let values = cell.values.iter().map(|(_, v)| field(v));
        lines.push(values.chain(numbers).collect::<Vec<_>>().join(","));
    }
    lines.join("\n") + "\n"
}

/// A CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(text: impl AsRef<str>) -> String {
    let text = text.as_ref();
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(field("512"), "512");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn number_knobs_are_json_numbers() {
        assert_eq!(value_json("batch.max_queue_size", "512"), json!(512));
        assert_eq!(value_json("tracing.sample_rate", "0.25"), json!(0.25));
        assert_eq!(value_json("shutdown.at_s", "-1"), json!(-1));
        assert_eq!(value_json("tracing.semantics", "rust"), json!("rust"));
    }
}
