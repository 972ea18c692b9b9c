//! Load generator accuracy (issue 19): the probe's open-loop load (`probe --url`'s
//! `Load`) against a trivial local HTTP server at 2,000 and 5,000 requests/s, with its
//! send lag (sent - scheduled) and latency (ended - scheduled), compared with `oha` run
//! against the same server at the same rate with the same connection behaviour (a fresh
//! connection per request, latency from the due time). A standalone main rather than a
//! timed test: the figures depend on the machine and on what else it runs, so it prints
//! them with PASS/FAIL against the targets and leaves the judging to a person.
//!
//! The probe runs twice at each rate: on its own schedule (Poisson arrivals), and on
//! oha's as oha really sends it (`rate / 1000` requests at once every millisecond: its
//! `-q` ticker sleeps on tokio's 1 ms timer), so that the latency comparison is of the
//! two measurements of the same arrivals. oha stamps a request's start when its ticker
//! wakes, so its figures include its own batching but not its timer's lateness.
//!
//! `cargo bench --no-default-features --bench load` (README, Load generator accuracy);
//! oha: `cargo install oha --locked`.

mod cpu;
mod oha;
mod probe;
mod server;

use std::path::PathBuf;
use std::time::Duration;

use oha::OhaFigures;
use probe::{ProbeFigures, Shape};
use server::{Pinning, Server};

/// The rates; `GRACETRACE_LOAD_BENCH_RATES=500,2000` runs others.
const RATES: [f64; 2] = [2000.0, 5000.0];
/// Each run at each rate: a few seconds, 6,000 and 15,000 requests.
const RUN: Duration = Duration::from_secs(3);
/// A short probe run first at each rate, not counted: the server's first connections and
/// the first run's page faults would otherwise land in the first generator's figures.
const WARM_UP: Duration = Duration::from_millis(500);
/// The targets: sends within 1 ms of schedule at p99, latencies within 10% of
/// oha's at p50 and p99.
const MAX_LAG_P99: Duration = Duration::from_millis(1);
const MAX_LATENCY_GAP: f64 = 0.10;

/// One probe run's figures.
struct ProbeRun {
    shape: Shape,
    figures: ProbeFigures,
    /// CPU time per request.
    cpu: Duration,
}

/// One rate's figures.
struct Row {
    rate: f64,
    probe: Vec<ProbeRun>,
    oha: Option<Result<(OhaFigures, Duration), String>>,
}

fn main() {
    if std::env::var_os(server::SERVE_ENV).is_some() {
        return server::serve_here();
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "load generator accuracy: {cpus} CPUs, load average {}",
        load_average()
    );
    let oha = oha::find();
    if oha.is_none() {
        println!(
            "oha is not installed (not on PATH, not in $CARGO_HOME/bin): only the probe's own \
             figures follow. Install it with `cargo install oha --locked`."
        );
    }
    let pinning = Pinning::here();
    println!("{}", pinning.describe());
    let rows: Vec<Row> = rates()
        .into_iter()
        .enumerate()
        .map(|(i, rate)| one_rate(rate, i == 0, oha.as_ref(), &pinning))
        .collect();
    println!("load average after: {}\n", load_average());
    print_table(&rows);
    let verdicts = verdicts(&rows);
    let passed = verdicts.iter().all(|(_, pass)| *pass);
    for (line, pass) in &verdicts {
        println!("{} {line}", if *pass { "PASS" } else { "FAIL" });
    }
    println!(
        "overall: {}",
        match (passed, oha.is_some()) {
            (true, true) => "PASS",
            (true, false) => "PASS for send lag; latency not compared (no oha)",
            (false, _) => "FAIL",
        }
    );
}

/// A fresh server, a warm-up, the probe on both shapes, then oha.
fn one_rate(rate: f64, first: bool, oha: Option<&PathBuf>, pinning: &Pinning) -> Row {
    let server = Server::start(pinning);
    if first {
        println!("server: 127.0.0.1, {}", server.pinned);
    }
    if let Err(e) = probe::run(server.port, Shape::Poisson, rate, WARM_UP) {
        panic!("warm-up at {rate} requests/s: {e}");
    }
    let probe = [Shape::Poisson, Shape::Ticks]
        .into_iter()
        .map(|shape| {
            let before = cpu::now();
            let figures = probe::run(server.port, shape, rate, RUN)
                .unwrap_or_else(|e| panic!("probe {} at {rate}/s: {e}", shape.name()));
            let spent = cpu::now().own - before.own;
            let cpu = per_request(spent, figures.answered + figures.failed);
            ProbeRun {
                shape,
                figures,
                cpu,
            }
        })
        .collect();
    let oha = oha.map(|path| {
        let before = cpu::now();
        let figures = oha::run(path, pinning, server.port, rate, RUN)?;
        let spent = cpu::now().children - before.children;
        let cpu = per_request(spent, figures.answered + figures.failed);
        Ok((figures, cpu))
    });
    Row { rate, probe, oha }
}

/// [`RATES`], or `GRACETRACE_LOAD_BENCH_RATES` (requests/s, comma-separated).
fn rates() -> Vec<f64> {
    let Ok(text) = std::env::var("GRACETRACE_LOAD_BENCH_RATES") else {
        return RATES.to_vec();
    };
    text.split(',')
        .map(|rate| match rate.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r >= 1.0 => r,
            _ => panic!(
                "GRACETRACE_LOAD_BENCH_RATES={text}: expected requests/s, at least 1, \
                 separated by commas (e.g. 500,2000)"
            ),
        })
        .collect()
}

/// /proc/loadavg's three averages, or "unknown".
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".into())
}

fn per_request(cpu: Duration, requests: u64) -> Duration {
    cpu / u32::try_from(requests.max(1)).unwrap_or(u32::MAX)
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1e6)
}

/// One line of the table: `(ok, fail)`, `(p50, p99)`; `lag` is `None` for oha, which
/// does not say when it sent.
fn line(
    rate: f64,
    who: &str,
    (ok, fail): (u64, u64),
    lag: Option<&ProbeFigures>,
    (p50, p99): (Duration, Duration),
    cpu: Duration,
) {
    let [l50, l99, lmax] = match lag {
        Some(p) => [ms(p.lag_p50), ms(p.lag_p99), ms(p.lag_max)],
        None => ["-".into(), "-".into(), "-".into()],
    };
    println!(
        "{rate:>6}  {who:<15}  {ok:>6}  {fail:>5}  {l50:>8}  {l99:>8}  {lmax:>8}  {:>8}  {:>8}  {:>7}",
        ms(p50),
        ms(p99),
        us(cpu)
    );
}

fn print_table(rows: &[Row]) {
    println!(
        "{:>6}  {:<15}  {:>6}  {:>5}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}  {:>7}",
        "rate/s",
        "generator",
        "ok",
        "fail",
        "lag p50",
        "lag p99",
        "lag max",
        "lat p50",
        "lat p99",
        "cpu/req"
    );
    for row in rows {
        for run in &row.probe {
            let p = &run.figures;
            let who = format!("probe {}", run.shape.name());
            let counts = (p.answered, p.failed);
            line(row.rate, &who, counts, Some(p), (p.p50, p.p99), run.cpu);
        }
        match &row.oha {
            None => {}
            Some(Err(e)) => println!("{:>6}  oha failed: {e}", row.rate),
            Some(Ok((o, cpu))) => {
                let counts = (o.answered, o.failed);
                line(row.rate, "oha", counts, None, (o.p50, o.p99), *cpu);
            }
        }
    }
    println!(
        "(milliseconds; lag = sent - scheduled, lat = ended - scheduled; cpu/req: the \
         generator's CPU time per request, microseconds, at /proc's 10 ms resolution)\n"
    );
}

/// Each target, in words, and whether it held: the send lag on both shapes, latency
/// against oha on the shape oha sends (the Poisson run's gap is shown, not judged: the
/// arrivals differ).
fn verdicts(rows: &[Row]) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for row in rows {
        for run in &row.probe {
            let p = &run.figures;
            out.push((
                format!(
                    "send lag p99, {} at {}/s: {} ms (target <= {} ms); {} of {} failed",
                    run.shape.name(),
                    row.rate,
                    ms(p.lag_p99),
                    ms(MAX_LAG_P99),
                    p.failed,
                    p.answered + p.failed
                ),
                p.lag_p99 <= MAX_LAG_P99 && p.failed == 0,
            ));
        }
        let Some(Ok((o, _))) = &row.oha else { continue };
        for run in row.probe.iter().filter(|r| r.shape == Shape::Ticks) {
            let p = &run.figures;
            for (name, ours, theirs) in [("p50", p.p50, o.p50), ("p99", p.p99, o.p99)] {
                let gap = ours.as_secs_f64() / theirs.as_secs_f64() - 1.0;
                out.push((
                    format!(
                        "latency {name}, {} at {}/s: probe {} ms, oha {} ms ({:+.1}%, target \
                         within {:.0}%)",
                        run.shape.name(),
                        row.rate,
                        ms(ours),
                        ms(theirs),
                        gap * 100.0,
                        MAX_LATENCY_GAP * 100.0
                    ),
                    gap.abs() <= MAX_LATENCY_GAP,
                ));
            }
        }
    }
    out
}
