//! The what-if's unit tests: ranges as `gracetrace sweep` reads them, the sweep of one
//! knob and of two, the cell of the settings in force, the refused requests, and a job's
//! result or typed error.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::job::Slot;
use super::*;
use crate::config::knobs;
use crate::config::{Settings, Source};
use crate::session::sweep::Vary;
use crate::sim::{Steady, TEST_COSTS as COSTS};

fn axis(key: &'static str, from: f64, to: f64, steps: usize) -> Axis {
    Axis {
        key,
        from,
        to,
        steps,
    }
}

/// A short scenario whose small queues drop: 3 s of 200 requests/s to a slow backend.
fn slow_backend() -> Settings {
    let mut s = Settings::default();
    for (k, v) in [
        ("workload.duration_s", "3"),
        ("workload.rate_per_s", "200"),
        ("collector.latency_ms", "500"),
    ] {
        s.set(k, v, Source::CommandLine).unwrap();
    }
    s
}

#[test]
fn a_range_over_decades_is_geometric_and_parses_as_the_cli_would() {
    let r = axis("batch.max_queue_size", 64.0, 32768.0, 10);
    assert!(r.geometric());
    let vary = Vary::parse(&r.vary_arg()).unwrap();
    assert_eq!(vary.values.len(), 10, "{:?}", vary.values);
    assert_eq!(vary.values.first().map(String::as_str), Some("64"));
    assert_eq!(vary.values.last().map(String::as_str), Some("32768"));
    let r = axis("tracing.sample_rate", 0.2, 1.0, 5);
    assert!(!r.geometric());
    assert_eq!(
        Vary::parse(&r.vary_arg()).unwrap().values,
        ["0.2", "0.4", "0.6", "0.8", "1"]
    );
    let one = axis("batch.schedule_delay_ms", 100.0, 100.0, 4);
    assert_eq!(Vary::parse(&one.vary_arg()).unwrap().values, ["100"]);
}

#[test]
fn default_ranges_stay_in_the_knobs_bounds() {
    let s = Settings::default();
    for key in knobs() {
        let (from, to) = default_range(key, &s).unwrap();
        let (min, max) = knobs::find(key).unwrap().bounds.numeric().unwrap();
        assert!(
            min <= from && from <= to && to <= max,
            "{key}: {from}..{to}"
        );
    }
    assert!(knobs().contains(&"shutdown.grace_ms"));
    assert!(!knobs().contains(&"tracing.semantics"));
}

#[test]
fn a_small_queue_drops_in_the_sweep_and_a_cell_applies_on_top_of_other_settings() {
    let s = slow_backend();
    let r = Request::one(axis("batch.max_queue_size", 64.0, 65536.0, 4));
    let result = sweep(&r, &s, COSTS, &|_, _| {}).unwrap();
    assert_eq!(
        result.steady,
        Some(Steady::default()),
        "no SIGTERM in the settings: the live runner's steady state"
    );
    assert!(
        result
            .points
            .iter()
            .all(|p| p.steady.is_some() && !p.killed)
    );
    assert_eq!(result.points.len(), 4);
    let (small, big) = (&result.points[0], &result.points[3]);
    assert!(small.dropped_queue_full > 0 && big.dropped_queue_full == 0);
    assert_eq!(result.current, Some(2048.0));
    let mut now = s.clone();
    now.tracing.sample_rate = 0.5;
    let applied = result.cell_settings(0, &now).unwrap().unwrap();
    assert_eq!(applied.batch.max_queue_size, 64);
    assert_eq!(
        applied.batch.max_export_batch_size, 64,
        "the batch followed"
    );
    assert_eq!(applied.tracing.sample_rate, 0.5, "the rest is the window's");
    assert_eq!(applied.shutdown.at_s, None);
    assert!(result.cell_settings(9, &now).is_none());
}

/// A shutdown knob swept on settings without SIGTERM: SIGTERM comes at the end of the
/// traffic (as `gracetrace advise` assumes), and stays in the simulator.
#[test]
fn a_swept_shutdown_knob_assumes_sigterm_at_the_end_of_the_traffic() {
    let s = slow_backend();
    let r = Request::one(axis("shutdown.grace_ms", 0.0, 2000.0, 3));
    let result = sweep(&r, &s, COSTS, &|_, _| {}).unwrap();
    assert!(result.sigterm_assumed && result.sigterm_at_s == 3.0);
    assert_eq!(result.steady, None);
    let applied = result.cell_settings(0, &s).unwrap().unwrap();
    assert_eq!(
        applied.shutdown.at_s, None,
        "the assumed SIGTERM stays in the sim"
    );
}

#[test]
fn two_knobs_sweep_their_grid_and_a_cell_applies_both() {
    let mut s = slow_backend();
    s.tracing.sample_rate = 0.5;
    s.batch.max_queue_size = 4096;
    let r = Request {
        first: axis("batch.max_queue_size", 64.0, 65536.0, 4),
        second: Some(axis("tracing.sample_rate", 0.25, 1.0, 4)),
    };
    let result = sweep(&r, &s, COSTS, &|_, _| {}).unwrap();
    assert_eq!(result.columns, ["64", "645", "6502", "65536"]);
    assert_eq!(result.rows, ["0.25", "0.5", "0.75", "1"]);
    assert_eq!(result.points.len(), 16);
    // The caption's `gracetrace sweep --vary .. --vary ..` runs the same values.
    let cli: Vec<Vec<String>> = (r.vary_args().iter())
        .map(|arg| Vary::parse(arg).unwrap().values)
        .collect();
    assert_eq!(cli, [result.columns.clone(), result.rows.clone()]);
    // Column 1, row 2: the second knob changes fastest.
    let cell = &result.points[result.index(1, 2).unwrap()];
    assert_eq!(
        (cell.value.as_str(), cell.second.as_deref()),
        ("645", Some("0.75"))
    );
    assert_eq!((cell.x, cell.y), (645.0, Some(0.75)));
    assert_eq!(result.index(4, 0), None);
    assert_eq!(result.index(0, 4), None);
    // More sampled spans, more to drop: at queue 64, a rate of 1 drops more than 0.25.
    let (thin, full) = (&result.points[0], &result.points[3]);
    assert!(thin.sampled < full.sampled, "{thin:?} {full:?}");
    assert!(full.dropped_queue_full > thin.dropped_queue_full);
    // 4096 lies between 645 and 6502 (nearer 6502); 0.5 is a row.
    assert_eq!(
        result.current_cell(),
        Some((result.index(2, 1).unwrap(), false))
    );
    let applied = result
        .cell_settings(result.index(0, 3).unwrap(), &s)
        .unwrap()
        .unwrap();
    assert_eq!(applied.batch.max_queue_size, 64);
    assert_eq!(applied.tracing.sample_rate, 1.0);
    assert_eq!(
        applied.batch.max_export_batch_size, 64,
        "the batch followed"
    );
    let mut now = s.clone();
    now.tracing.sample_rate = 0.75;
    now.batch.max_queue_size = 645;
    let exact = SweepResult {
        base: now.clone(),
        current: Some(645.0),
        current_second: Some(0.75),
        ..result.clone()
    };
    assert_eq!(
        exact.current_cell(),
        Some((exact.index(1, 2).unwrap(), true))
    );
    let outside = SweepResult {
        current_second: Some(0.1),
        ..result
    };
    assert_eq!(outside.current_cell(), None, "0.1 is below the rows");
}

#[test]
fn a_request_over_the_cap_or_with_one_knob_twice_is_refused_with_the_reason() {
    let big = Request {
        first: axis("batch.max_queue_size", 64.0, 65536.0, 30),
        second: Some(axis("tracing.sample_rate", 0.1, 1.0, 30)),
    };
    let why = big.refused().unwrap();
    assert!(why.starts_with("30 x 30 = 900 cells: at most 400"), "{why}");
    let error = sweep(&big, &Settings::default(), COSTS, &|_, _| panic!("no run")).unwrap_err();
    assert!(matches!(&error, WhatIfError::Refused(_)), "{error:?}");
    assert_eq!(error.to_string(), why, "the window shows the reason as is");
    let twice = Request {
        second: Some(big.first.clone()),
        ..big.clone()
    };
    assert!(twice.refused().unwrap().contains("chosen twice"));
    let upside_down = Request::one(axis("tracing.sample_rate", 1.0, 0.5, 3));
    assert!(
        upside_down
            .refused()
            .unwrap()
            .contains("from must not be above to")
    );
    assert_eq!(
        Request::one(big.first).refused(),
        None,
        "30 values of one knob"
    );
}

/// Polls `slot` until its job's outcome arrives.
fn finish<T: Send + 'static>(slot: &mut Slot<T>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !slot.poll() {
        assert!(Instant::now() < deadline, "the job never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_job_keeps_its_error_typed_until_the_window_shows_it_and_a_success_clears_it() {
    // Already calibrated: no job here makes the real 1.5 s run.
    let costs = Arc::new(Mutex::new(Some(COSTS.clone())));
    let mut slot = Slot::<usize>::default();
    slot.start(&costs, None, "whatif-test", |_, _| {
        Err(WhatIfError::Refused("one knob twice".into()))
    });
    finish(&mut slot);
    let failure = slot.view(false).error.expect("the job's error");
    assert!(
        matches!(failure.error(), JobError::WhatIf(WhatIfError::Refused(why)) if why == "one knob twice"),
        "{failure:?}"
    );
    assert_eq!(failure.to_string(), "one knob twice");
    assert_eq!(
        slot.view(false).error,
        Some(failure),
        "the same failure, shared"
    );

    slot.start(&costs, None, "whatif-test", |_, _| {
        panic!("a bug in the job")
    });
    finish(&mut slot);
    let failure = slot.view(false).error.expect("the panic's error");
    assert!(
        matches!(failure.error(), JobError::NoResult { .. }),
        "{failure:?}"
    );

    slot.start(&costs, None, "whatif-test", |_, progress| {
        progress(1, 1);
        Ok(7)
    });
    finish(&mut slot);
    let view = slot.view(false);
    assert_eq!(view.error, None);
    assert_eq!(view.last.as_deref(), Some(&7));
}
