//! The advice as text: [`render`] turns an [`Advice`] into the report `gracetrace advise`
//! prints and the window's What-if shows, each answer with the simulated runs it came
//! from. It only builds the string; printing is the caller's.

use std::fmt::Write;

use super::{Advice, COST_SCALES, Probe, Search, ShutdownAdvice, Summary};

/// `key=value` of a probe's change (`scenario as is` for none).
fn change(probe: &Probe) -> String {
    if probe.change.is_empty() {
        return "the scenario as is".into();
    }
    let pairs: Vec<String> = probe
        .change
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    pairs.join(" ")
}

/// The runs behind a search: each value tried and what its worst run lost, in the order
/// they were tried.
fn cite(search: &Search, metric: fn(&Summary) -> u64, what: &str) -> String {
    let runs: Vec<String> = search
        .probes
        .iter()
        .map(|p| {
            format!(
                "{} -> {}",
                p.change.first().map_or("", |c| c.1.as_str()),
                metric(&p.worst)
            )
        })
        .collect();
    format!("    runs ({} {what}): {}\n", search.key, runs.join(", "))
}

fn cost(price: Option<f64>, spans: u64) -> String {
    price.map_or_else(String::new, |p| {
        format!(", ${:.4} to ingest", p * spans as f64 / 1e6)
    })
}

/// The whole advice as text.
pub fn render(advice: &Advice, price: Option<f64>) -> String {
    let seeds: Vec<String> = advice.seeds.iter().map(u64::to_string).collect();
    let mut out = format!(
        "advise {} ({} semantics, virtual clock): every figure is the worst of {} simulated \
         runs, arrival seeds {} x export costs {} times the calibrated ones ({:.2} ms + {:.4} \
         ms/span, from {} real exports)\n",
        advice.scenario,
        advice.semantics,
        advice.seeds.len() * COST_SCALES.len(),
        seeds.join(", "),
        COST_SCALES.map(|s| s.to_string()).join(", "),
        advice.costs.per_batch_ms,
        advice.costs.per_span_ms,
        advice.costs.exports_measured,
    );
    let now = &advice.baseline.worst;
    let _ = writeln!(
        out,
        "now: {} dropped (queue full), {} lost in all, {} received{}",
        now.dropped_queue_full,
        now.lost,
        now.received,
        cost(price, now.received)
    );
    out += &queue_part(advice, price);
    out += &shutdown_part(&advice.shutdown, price);
    out
}

fn queue_part(advice: &Advice, price: Option<f64>) -> String {
    let dropped = |s: &Summary| s.dropped_queue_full;
    let mut out = String::new();
    let searches = [
        Some(&advice.queue),
        Some(&advice.delay_now),
        advice.delay_with_queue.as_ref(),
    ];
    for search in searches.into_iter().flatten() {
        let wanted = if search.key == "batch.max_queue_size" {
            "smallest"
        } else {
            "largest"
        };
        let at = search
            .context
            .as_ref()
            .map_or_else(String::new, |(k, v)| format!(" with {k}={v}"));
        let answer = match (&search.found, search.chosen()) {
            (Some(v), Some(p)) => format!(
                "{v}: {} dropped, {} received{}",
                p.worst.dropped_queue_full,
                p.worst.received,
                cost(price, p.worst.received)
            ),
            _ => "none of the values tried drops nothing".into(),
        };
        let _ = writeln!(
            out,
            "{wanted} {}{at} that drops nothing to a full queue: {answer}",
            search.key
        );
        out += &cite(search, dropped, "-> spans dropped, queue full");
    }
    out
}

fn shutdown_part(shutdown: &ShutdownAdvice, price: Option<f64>) -> String {
    let b = &shutdown.baseline.worst;
    let when = if shutdown.assumed {
        " (the scenario has no shutdown.at_s: SIGTERM at the end of its traffic)"
    } else {
        ""
    };
    let mut out = format!(
        "shutdown: SIGTERM at {} s{when}: {}, {} lost at kill, {} lost in all\n",
        shutdown.at_s,
        if b.killed { "SIGKILL" } else { "exit" },
        b.lost_at_kill,
        b.lost
    );
    for option in &shutdown.options {
        let Some(p) = option.probe() else { continue };
        let _ = writeln!(
            out,
            "  {}: {}{} -> {} lost at kill, {} lost in all, {} received{}",
            option.what,
            change(p),
            if option.stops_it() {
                ""
            } else {
                " (the best tried; none stops it)"
            },
            p.worst.lost_at_kill,
            p.worst.lost,
            p.worst.received,
            cost(price, p.worst.received)
        );
        out += &cite(&option.search, |s| s.lost_at_kill, "-> spans lost at kill");
    }
    match shutdown.cheapest() {
        Some(o) => {
            let _ = writeln!(
                out,
                "cheapest change that stops it: {} (of those that lose nothing at kill, it \
                 keeps the most spans)",
                o.probe().map_or_else(String::new, change)
            );
        }
        None if b.lost_at_kill > 0 => out += "no single change tried stops the loss at kill\n",
        None => {}
    }
    out
}
