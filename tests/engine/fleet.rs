//! The fleet (`[fleet]`, virtual time only) against the lone runner it is made of: a fleet
//! of one is the lone runner on every shipped scenario; N replicas shut down at once with
//! an unlimited backend lose what N lone runners with every N-th arrival each lose; a
//! backend quota shared by the fleet answers 429s whose retries are counted; every row
//! and the totals hold the identity; a bad fleet knob and a real-time fleet exit 2.

use std::process::Command;

use gracetrace::record::fleet::{FleetReport, ReplicaRow};
use gracetrace::session::advise::Advisor;
use gracetrace::session::sweep::{self, Grid, Vary};
use gracetrace::sim::{self, Calibration, SimOutcome};
use serde_json::json;

use crate::common::{assert_accounted, scenario};

/// Round costs: these tests compare the simulator with itself, so no real run is needed.
const COSTS: Calibration = Calibration {
    exports_measured: 0,
    bytes_per_span: 100.0,
    per_batch_ms: 1.0,
    per_span_ms: 0.01,
    model: None,
};

const SEMANTICS: [&str; 4] = ["python", "rust", "js", "sdk"];

/// Every scenario `gracetrace` ships, by name.
fn shipped() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/scenarios");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("the shipped scenarios")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".toml").map(str::to_owned))
        .collect();
    names.sort();
    assert!(names.len() >= 8, "{names:?}");
    names
}

fn fleet(outcome: &SimOutcome) -> &FleetReport {
    outcome.fleet.as_ref().expect("a fleet's rows")
}

/// What a replica did, as its row has it, next to the lone runner's outcome; with
/// `offered` the requests sent to it and refused too (else only those it took).
fn same_run(row: &ReplicaRow, lone: &SimOutcome, offered: bool) -> Result<(), String> {
    let mut requests = serde_json::to_value(row.requests).unwrap();
    let mut expected = serde_json::to_value(lone.requests).unwrap();
    if !offered {
        let taken =
            |r: &serde_json::Value| r["sent"].as_u64().unwrap() - r["refused"].as_u64().unwrap();
        assert_eq!(taken(&requests), taken(&expected), "{}", row.replica);
        for r in [&mut requests, &mut expected] {
            r["sent"] = json!(0);
            r["refused"] = json!(0);
        }
    }
    let mine = json!([
        row.spans,
        requests,
        row.killed,
        row.peak_queue,
        row.http_attempts,
        row.http_bytes,
        row.http_retries,
        row.sigkill_ms,
        row.end_ms
    ]);
    let lone_sigkill = lone.shutdown.as_ref().and_then(|s| s.sigkill_ms);
    let theirs = json!([
        lone.spans,
        expected,
        lone.killed,
        lone.peak_queue,
        lone.http_attempts,
        lone.http_bytes,
        lone.http_retries,
        lone_sigkill,
        lone.duration_ms
    ]);
    match mine == theirs {
        true => Ok(()),
        false => Err(format!("{}:\n fleet {mine}\n lone  {theirs}", row.replica)),
    }
}

fn assert_rows_accounted(f: &FleetReport) {
    for row in &f.rows {
        assert_accounted(&row.spans);
        assert_eq!(row.unaccounted, 0, "{}", row.replica);
    }
    assert_accounted(&f.totals.spans);
    assert_eq!(f.totals.unaccounted, 0);
    let created: u64 = f.rows.iter().map(|r| r.spans.created).sum();
    let lost: u64 = f.rows.iter().map(|r| r.lost).sum();
    assert_eq!((created, lost), (f.totals.spans.created, f.totals.lost));
}

/// A fleet of one, its replacement coming only after the run, is the lone runner exactly
/// on every shipped scenario and every SDK's rules; with the replacement an hour early
/// or 30 s after SIGTERM, the replica still serves exactly what the lone runner serves
/// (the arrivals it refused go to the replacement instead).
#[test]
fn a_fleet_of_one_is_the_lone_runner_on_every_shipped_scenario() {
    let mut failures = Vec::new();
    for name in shipped() {
        for semantics in SEMANTICS {
            let semantics = format!("tracing.semantics={semantics}");
            let lone_settings = scenario(&name, &[&semantics]);
            let lone = sim::run(&lone_settings, &COSTS).unwrap();
            for (startup, offered) in [("3600", true), ("30", false), ("0", false)] {
                let startup = format!("fleet.startup_s={startup}");
                let settings = scenario(&name, &[&semantics, &startup]);
                let one = sim::run_fleet(&settings, &COSTS).unwrap();
                let f = fleet(&one);
                assert_rows_accounted(f);
                if let Err(e) = same_run(&f.rows[0], &lone, offered) {
                    failures.push(format!("{name} {semantics} {startup}: {e}"));
                }
                if lone_settings.shutdown.at_s.is_none() {
                    // No deploy, no replacement: the totals are the lone runner's.
                    let mut totals = one.clone();
                    totals.fleet = None;
                    let (a, b) = (serde_json::to_value(&totals), serde_json::to_value(&lone));
                    assert_eq!(a.unwrap(), b.unwrap(), "{name} {semantics}");
                    assert_eq!(f.rows.len(), 1);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// N replicas behind an unlimited backend, all SIGTERMed at once, each take every N-th
/// arrival while in service, and lose exactly what N lone runners lose that each take
/// every N-th arrival of the same schedule (with that replica's draws).
#[test]
fn n_replicas_at_once_lose_what_n_lone_runners_with_a_share_each_lose() {
    let cases = [
        ("shutdown-long-requests", "8", "python"),
        ("shutdown-slow-backend", "4", "rust"),
        ("shutdown-clean", "5", "js"),
        ("burst-overflow", "3", "python"),
    ];
    for (name, n, semantics) in cases {
        let base = scenario(name, &[&format!("tracing.semantics={semantics}")]);
        let rate = (base.workload.rate_per_s * n.parse::<f64>().unwrap()).to_string();
        let sets = [
            format!("tracing.semantics={semantics}"),
            format!("workload.rate_per_s={rate}"),
            format!("fleet.replicas={n}"),
            "fleet.rollout=all_at_once".into(),
        ];
        let settings = scenario(name, &sets.iter().map(String::as_str).collect::<Vec<_>>());
        let outcome = sim::run(&settings, &COSTS).unwrap();
        let f = fleet(&outcome);
        assert_rows_accounted(f);
        let n: u64 = n.parse().unwrap();
        let mut lone_lost = 0;
        for k in 0..n {
            let lone = sim::run_share(&settings, &COSTS, n, k).unwrap();
            lone_lost += lone.spans.lost();
            if let Err(e) = same_run(&f.rows[k as usize], &lone, false) {
                panic!("{name} ({semantics}, {n} replicas): {e}");
            }
        }
        let fleet_lost: u64 = f
            .rows
            .iter()
            .filter(|r| !r.replacement)
            .map(|r| r.lost)
            .sum();
        assert_eq!(fleet_lost, lone_lost, "{name}");
        println!("{name}: {n} replicas lost {fleet_lost}, as {n} lone runners");
    }
}

/// A backend quota shared by the fleet answers 429 when the fleet's exports exceed it;
/// the SDKs that retry a 429 (rust, js, sdk) retry those, python's fails them, the report
/// counts both, and the same fleet against an unlimited backend gets no 429 at all.
#[test]
fn a_shared_ingest_limit_answers_429s_whose_retries_are_counted() {
    for semantics in SEMANTICS {
        let sets = [
            format!("tracing.semantics={semantics}"),
            "workload.duration_s=60".to_owned(),
            "workload.rate_per_s=400".to_owned(),
            "workload.concurrency=64".to_owned(),
            "batch.schedule_delay_ms=500".to_owned(),
            "fleet.replicas=10".to_owned(),
        ];
        let sets: Vec<&str> = sets.iter().map(String::as_str).collect();
        let free = sim::run(&scenario("seed-defaults", &sets), &COSTS).unwrap();
        let mut limited = sets.clone();
        limited.push("fleet.backend_ingest_limit_spans_per_s=300");
        let limited = sim::run(&scenario("seed-defaults", &limited), &COSTS).unwrap();
        let (free_f, limited_f) = (fleet(&free), fleet(&limited));
        assert_rows_accounted(free_f);
        assert_rows_accounted(limited_f);
        assert_eq!(free_f.totals.http_throttled, 0, "{semantics}");
        let t = &limited_f.totals;
        println!(
            "{semantics}: {} attempts, {} answered 429, {} retries, {} lost (free: {} attempts)",
            t.http_attempts, t.http_throttled, t.http_retries, t.lost, free_f.totals.http_attempts
        );
        assert!(t.http_throttled > 0, "{semantics}: {t:?}");
        if semantics == "python" {
            // Python's exporter retries 408 and 5xx, not 429 (`_is_retryable`): every
            // throttled export fails.
            assert_eq!(t.http_retries, 0, "{t:?}");
            assert!(t.spans.export_failed > 0, "{t:?}");
        } else {
            assert!(t.http_retries > 0, "{semantics}: {t:?}");
            assert!(t.http_retries < t.http_attempts, "{semantics}: {t:?}");
        }
        let rows_throttled: u64 = limited_f.rows.iter().map(|r| r.http_throttled).sum();
        assert_eq!(rows_throttled, t.http_throttled);
    }
}

/// A rolling deploy in waves: each wave's SIGTERM one interval after the last, every
/// replica replaced, the survivors taking the traffic, every span accounted for.
#[test]
fn a_rolling_deploy_sigterms_in_waves_and_replaces_every_replica() {
    let settings = scenario(
        "seed-defaults",
        &[
            "workload.duration_s=120",
            "workload.rate_per_s=200",
            "shutdown.at_s=20",
            "fleet.replicas=10",
            "fleet.rollout=waves",
            "fleet.max_unavailable=25%",
            "fleet.wave_interval_s=15",
            "fleet.startup_s=10",
        ],
    );
    let outcome = sim::run(&settings, &COSTS).unwrap();
    let f = fleet(&outcome);
    assert_rows_accounted(f);
    assert_eq!((f.per_wave, f.waves, f.rows.len()), (3, 4, 20));
    for row in f.rows.iter().filter(|r| !r.replacement) {
        let wave = row.wave.expect("every first replica is SIGTERMed");
        assert_eq!(wave, row.slot / 3);
        assert_eq!(row.sigterm_ms, Some(20_000.0 + 15_000.0 * wave as f64));
    }
    for row in f.rows.iter().filter(|r| r.replacement) {
        assert!(row.requests.completed > 0, "{} served nothing", row.replica);
    }
    assert_eq!(f.totals.requests_unrouted, 0);
    let sent = outcome.requests.sent;
    assert!(sent > 20_000, "{sent}");
}

/// `sweep --vary fleet.max_unavailable=1,5,10` and `advise` take a fleet: each cell's
/// runs are fleets of that many per wave, their counts the fleet's totals; the advisor's
/// baseline is the fleet's worst run.
#[test]
fn sweep_and_advise_take_a_fleet() {
    let settings = scenario(
        "shutdown-long-requests",
        &[
            "workload.rate_per_s=20",
            "workload.duration_s=40",
            "shutdown.at_s=5",
            "shutdown.waiting=serve",
            "fleet.replicas=10",
            "fleet.rollout=waves",
            "fleet.wave_interval_s=3",
        ],
    );
    let vary = Vary::parse("fleet.max_unavailable=1,5,10").unwrap();
    let grid = Grid::new(vec![vary]).unwrap();
    let swept = sweep::run(&settings, &grid, 2, &COSTS, None, &|_, _| {}).unwrap();
    for (cell, per_wave) in swept.cells.iter().zip([1, 5, 10]) {
        for run in &cell.runs {
            let f = fleet(&run.outcome);
            assert_rows_accounted(f);
            assert_eq!((f.per_wave, f.waves), (per_wave, 10 / per_wave));
            assert_eq!(run.lost(), f.totals.lost);
        }
    }
    let advice = Advisor::new(&settings, COSTS, 1).unwrap().run().unwrap();
    // The advisor's worst run is no better than the scenario's own (one of its runs).
    let own = sim::run(&settings, &COSTS).unwrap();
    assert!(advice.baseline.worst.lost_at_kill >= own.spans.lost_at_kill);
    assert!(own.fleet.is_some());
    assert!(
        advice.baseline.worst.killed,
        "SIGKILL takes the served backlog"
    );
}

fn gracetrace(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gracetrace"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_fleet_knob_out_of_range_or_a_real_time_fleet_exits_2_with_one_line() {
    let bad = [
        ("fleet.replicas=0", "a whole number from 1 to 10000"),
        ("fleet.max_unavailable=0", "a share from above 0% to 100%"),
        (
            "fleet.max_unavailable=150%",
            "a share from above 0% to 100%",
        ),
        ("fleet.rollout=sideways", "all_at_once or waves"),
        ("fleet.startup_s=-1", "a number from 0 to 3600"),
        ("fleet.backend_ingest_limit_spans_per_s=-5", "0 (no limit)"),
    ];
    for (set, range) in bad {
        let (code, stderr) = gracetrace(&["run", "--clock", "virtual", "--set", set]);
        assert_eq!(code, Some(2), "{set}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{set}: {stderr}");
        let (key, value) = set.split_once('=').unwrap();
        for part in [key, value, range] {
            assert!(
                stderr.contains(part),
                "{set}: {part:?} missing from {stderr}"
            );
        }
    }
    let (code, stderr) = gracetrace(&["run", "--set", "fleet.replicas=3"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("fleet.replicas = 3") && stderr.contains("virtual time only"));
}
