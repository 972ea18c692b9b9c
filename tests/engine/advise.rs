//! The advisor's word checked against the real pipeline: its queue and delay
//! recommendation for the shipped burst scenario, found by simulated runs, applied and
//! run in REAL time, loses no span to a full queue.

use std::process::Command;

use gracetrace::config::Source;
use gracetrace::session::advise::Advisor;
use gracetrace::session::virtual_clock::calibrate;

use crate::common::{assert_accounted, scenario};

#[test]
fn the_burst_recommendation_drops_nothing_in_real_time() {
    let base = scenario("burst-overflow", &[]);
    let costs = calibrate().expect("calibration");
    let advice = Advisor::new(&base, costs.clone(), 3)
        .unwrap()
        .run()
        .unwrap();
    // The scenario as shipped overflows: there is something to advise.
    assert!(advice.baseline.worst.dropped_queue_full > 0);
    let queue = advice
        .queue
        .found
        .clone()
        .expect("a queue size that drops nothing");
    let mut applied = base.clone();
    applied
        .set("batch.max_queue_size", &queue, Source::CommandLine)
        .unwrap();
    let delay = advice
        .delay_with_queue
        .as_ref()
        .and_then(|d| d.found.clone());
    if let Some(delay) = &delay {
        applied
            .set("batch.schedule_delay_ms", delay, Source::CommandLine)
            .unwrap();
    }
    let real = gracetrace::session::run(&applied).unwrap();
    println!(
        "advised max_queue_size={queue} schedule_delay_ms={delay:?} (from {} + {:?} probes, \
         calibration {costs:?}); real run: {:?}",
        advice.queue.probes.len(),
        advice.delay_with_queue.as_ref().map(|d| d.probes.len()),
        real.spans.counts
    );
    assert_accounted(&real.spans.counts);
    assert_eq!(real.spans.counts.dropped_queue_full, 0);
    assert_eq!(real.spans.counts.exported, real.spans.counts.created);
}

#[test]
fn a_bad_price_or_scenario_exits_2_naming_it() {
    let bin = env!("CARGO_BIN_EXE_gracetrace");
    let out = Command::new(bin)
        .args(["advise", "--price-per-million=-3"])
        .env_clear()
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--price-per-million") && stderr.contains("\"-3\""),
        "{stderr}"
    );
    // What the simulator cannot follow: a backend of the user's; and in a build without the
    // model, the model workload, refused before the simulator is asked (with the model it
    // runs at the model's measured times).
    let mut refused = vec![(
        "exporter.endpoint=http://127.0.0.1:9/v1/traces",
        "exporter.endpoint = set cannot run in virtual time",
    )];
    if !cfg!(feature = "model") {
        refused.push(("workload.kind=model", "workload.kind"));
    }
    for (set, why) in refused {
        let out = Command::new(bin)
            .args(["advise", "--set", set])
            .env_clear()
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{set}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{set}: {stderr}");
        assert!(stderr.contains(why), "{set}: {stderr}");
    }
}
