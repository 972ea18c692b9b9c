//! The contract between the two clocks: every shipped scenario run by the threaded
//! pipeline in real time and by the simulator in virtual time gives the same counts,
//! within one export batch or 2% (whichever is larger), and the same exit-or-SIGKILL
//! verdict. The table of both is printed (`--nocapture` shows it).

use gracetrace::config::Settings;
use gracetrace::record::report::Report;
use gracetrace::session::{self, virtual_clock};

use crate::common::{assert_accounted, no_env, scenario_path};

const SHIPPED: [&str; 8] = [
    "burst-overflow",
    "flaky-backend",
    "outage",
    "seed-defaults",
    "shutdown-clean",
    "shutdown-long-requests",
    "shutdown-slow-backend",
    "slow-backend",
];

fn killed(report: &Report) -> bool {
    report.shutdown.as_ref().is_some_and(|s| s.killed)
}

/// The five compared counts, by name.
fn counts(report: &Report) -> [(&'static str, u64); 5] {
    let s = &report.spans.counts;
    [
        ("exported", s.exported),
        ("dropped", s.dropped_queue_full),
        ("failed", s.export_failed),
        ("lost@kill", s.lost_at_kill),
        ("received", s.received),
    ]
}

/// The counts that differ by more than the tolerance, in words.
fn disagreements(settings: &Settings, real: &Report, virt: &Report) -> Vec<String> {
    let created = real.spans.counts.created.max(virt.spans.counts.created) as f64;
    let tolerance = (settings.batch.max_export_batch_size as f64).max(0.02 * created);
    let mut out = Vec::new();
    for ((name, r), (_, v)) in counts(real).into_iter().zip(counts(virt)) {
        if (r as f64 - v as f64).abs() > tolerance {
            out.push(format!(
                "{name}: real {r}, virtual {v} (tolerance {tolerance:.0})"
            ));
        }
    }
    if killed(real) != killed(virt) {
        out.push(format!(
            "verdict: real killed={}, virtual killed={}",
            killed(real),
            killed(virt)
        ));
    }
    out
}

fn row(name: &str, clock: &str, report: &Report) -> String {
    let cells: String = counts(report)
        .iter()
        .map(|(_, n)| format!("{n:>10}"))
        .collect();
    let verdict = if killed(report) { "SIGKILL" } else { "exit" };
    format!("{name:<24} {clock:<8}{cells} {verdict:>8}")
}

#[test]
fn every_shipped_scenario_agrees_in_both_clocks() {
    let costs = virtual_clock::calibrate().expect("the calibration run");
    let header: String = counts(&Report::build(
        &Default::default(),
        &Settings::default(),
        None,
    ))
    .iter()
    .map(|(name, _)| format!("{name:>10}"))
    .collect();
    println!("{:<24} {:<8}{header}  verdict", "scenario", "clock");
    let mut failures = Vec::new();
    for name in SHIPPED {
        let path = scenario_path(name);
        let settings = Settings::load(&no_env, Some(&path), &[]).expect("a shipped scenario");
        let real = session::run(&settings).expect("the real run");
        let virt = virtual_clock::run_virtual(&settings, costs).expect("the virtual run");
        assert_accounted(&real.spans.counts);
        assert_accounted(&virt.spans.counts);
        println!(
            "{}\n{}",
            row(name, "real", &real),
            row(name, "virtual", &virt)
        );
        for d in disagreements(&settings, &real, &virt) {
            failures.push(format!("{name}: {d}"));
        }
    }
    assert!(
        failures.is_empty(),
        "the clocks disagree:\n{}",
        failures.join("\n")
    );
}
