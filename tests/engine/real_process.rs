//! The simulated SIGKILL against a real one: the same scenario run in-process and as a
//! child process (`gracetrace runner`) that gets a real SIGTERM and a real SIGKILL.
//!
//! Tolerance: both runs draw the same seeded arrivals, but their clocks start at
//! different moments (the child's traffic starts when it prints "ready"), so exports
//! can shift by one batch relative to SIGKILL: the counts must agree within
//! `max_export_batch_size` spans when killed, and within 2% (a few requests either side
//! of SIGTERM) when both exit cleanly.

use std::path::Path;

use crate::common::{scenario, scenario_path};
use gracetrace::lifecycle::process::run_child;

fn compare(name: &str) -> (u64, u64) {
    let settings = scenario(name, &[]);
    let simulated = gracetrace::session::run(&settings).expect("in-process run");
    let shutdown = simulated.shutdown.expect("shutdown");
    let args = vec![
        "--scenario".to_string(),
        scenario_path(name).display().to_string(),
    ];
    let child = run_child(
        Path::new(env!("CARGO_BIN_EXE_gracetrace")),
        &args,
        &settings,
    )
    .expect("child run");
    eprintln!(
        "{name}: simulated received {} (killed {}), real process received {} (killed {}, {:.0} ms after SIGTERM); steps {:?}",
        simulated.spans.counts.received,
        shutdown.killed,
        child.spans_received,
        child.killed,
        child.sigterm_to_end_ms,
        child.steps
    );
    assert_eq!(shutdown.killed, child.killed, "both killed, or both exited");
    (simulated.spans.counts.received, child.spans_received)
}

#[test]
fn killed_mid_flush_agrees_with_a_real_sigkill() {
    let (simulated, real) = compare("shutdown-slow-backend");
    let batch = 512;
    assert!(
        simulated.abs_diff(real) <= batch,
        "simulated {simulated}, real {real}"
    );
    assert!(real > 0);
}

#[test]
fn clean_exit_agrees_with_a_real_process() {
    let (simulated, real) = compare("shutdown-clean");
    let tolerance = (simulated as f64 * 0.02).max(9.0) as u64;
    assert!(
        simulated.abs_diff(real) <= tolerance,
        "simulated {simulated}, real {real}"
    );
}
