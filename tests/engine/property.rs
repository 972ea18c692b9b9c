//! Random scenarios (issue 11): every semantics, every backend fault, with and without a
//! shutdown, each run end to end through the real SDK, exporter and collector. Every one
//! must keep the accounting identity exactly, count no more at the collector than was
//! exported or lost at SIGKILL, and end in bounded time.
//!
//! 300 scenarios take several minutes, so the test is ignored in the default run; CI runs
//! a short form (`.ci/run`):
//!
//! ```text
//! GRACETRACE_PROPERTY_CASES=300 cargo test --test engine property -- --ignored --nocapture
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::common::{PATIENCE, no_env};
use gracetrace::config::Settings;
use gracetrace::record::Outcome;
use gracetrace::telemetry::shutdown_timeout;

/// Scenarios where the collector counted spans of an export whose answer crossed the
/// exporter's timeout (see `check`).
static CROSSED: AtomicU64 = AtomicU64::new(0);

/// What the backend does wrong in one scenario.
fn fault() -> impl Strategy<Value = (&'static str, Vec<String>)> {
    let status = prop::sample::select(vec![408u16, 429, 500, 502, 503, 504]);
    prop_oneof![
        Just(("healthy", vec![])),
        (1u64..300, 0u64..100).prop_map(|(l, j)| (
            "latency",
            vec![
                format!("collector.latency_ms={l}"),
                format!("collector.jitter_ms={j}")
            ]
        )),
        (0.1f64..1.0, status, prop::option::of(0u64..2)).prop_map(|(rate, status, after)| (
            "errors",
            vec![
                format!("collector.error_rate={rate}"),
                format!("collector.error_status={status}"),
                format!("collector.retry_after_s={}", after.map_or(-1, |a| a as i64)),
            ]
        )),
        Just(("outage", vec!["collector.outage=true".to_string()])),
        Just(("black_hole", vec!["collector.black_hole=true".to_string()])),
        (1u64..500).prop_map(|limit| (
            "ingest_limit",
            vec![format!("collector.ingest_limit_spans_per_s={limit}")]
        )),
    ]
}

/// The runner's side: semantics, batch, exporter, traffic.
fn runner() -> impl Strategy<Value = (&'static str, f64, Vec<String>)> {
    let semantics = prop::sample::select(vec!["python", "rust", "sdk"]);
    let traffic = (
        0.1f64..0.6,
        5.0f64..150.0,
        1usize..4,
        0u64..20,
        0usize..3,
        any::<bool>(),
    );
    let batch = (
        1usize..256,
        1usize..256,
        10u64..400,
        50u64..400,
        0.0f64..=1.0,
    );
    (semantics, traffic, batch).prop_map(
        |(
            semantics,
            (duration, rate, concurrency, inference, extra, flush),
            (q, b, delay, timeout, sample),
        )| {
            let overrides = vec![
                format!("tracing.semantics={semantics}"),
                format!("tracing.sample_rate={sample}"),
                format!("batch.max_queue_size={}", q.max(b)),
                format!("batch.max_export_batch_size={}", q.min(b)),
                format!("batch.schedule_delay_ms={delay}"),
                format!("exporter.timeout_ms={timeout}"),
                format!("workload.duration_s={duration}"),
                format!("workload.rate_per_s={rate}"),
                format!("workload.concurrency={concurrency}"),
                format!("workload.inference_ms={inference}"),
                format!("workload.upload_ms=1"),
                format!("workload.extra_spans={extra}"),
                format!("workload.flush_every_request={flush}"),
            ];
            (semantics, duration, overrides)
        },
    )
}

/// A shutdown at some point of the traffic, or none.
fn shutdown() -> impl Strategy<Value = Option<Vec<String>>> {
    let handle = prop::sample::select(vec!["none", "cancel"]);
    prop::option::of((0.0f64..1.0, 0u64..800, 0u64..500, handle).prop_map(
        |(at, grace, flush, handle)| {
            vec![
                format!("shutdown.at_s={:.3}", at * 0.6),
                format!("shutdown.grace_ms={grace}"),
                format!("shutdown.flush_timeout_ms={flush}"),
                format!("shutdown.handle_exit={handle}"),
            ]
        },
    ))
}

type Scenario = (
    (&'static str, f64, Vec<String>),
    (&'static str, Vec<String>),
    Option<Vec<String>>,
);

/// Runs one scenario and checks it; returns its label for the tally.
fn check(scenario: Scenario) -> Result<String, TestCaseError> {
    let ((semantics, duration, mut overrides), (fault, faults), shutdown) = scenario;
    overrides.extend(faults);
    let with_shutdown = shutdown.is_some();
    overrides.extend(shutdown.unwrap_or_default());
    let settings = Settings::load(&no_env, None, &overrides)
        .map_err(|e| TestCaseError::fail(format!("{e} in {overrides:?}")))?;
    let started = Instant::now();
    let report = gracetrace::session::run(&settings)
        .map_err(|e| TestCaseError::fail(format!("{e} in {overrides:?}")))?;
    let took = started.elapsed();
    let s = report.spans.counts;
    prop_assert_eq!(report.spans.unaccounted, 0, "{:#?} in {:?}", s, overrides);
    prop_assert_eq!(s.dropped_queue_full, s.dropped_oldest + s.dropped_newest);
    // `queued` is what the queue holds (at most max_queue_size, whatever the profile: the
    // stock processor's hidden drops included) and the one export in flight (a batch).
    let b = &settings.batch;
    prop_assert!(
        s.queued <= (b.max_queue_size + b.max_export_batch_size) as u64,
        "queued {} past the queue ({}) and a batch ({}): {:#?} in {:?}",
        s.queued,
        b.max_queue_size,
        b.max_export_batch_size,
        s,
        overrides
    );
    // What the collector counted was exported, or lost at SIGKILL in an export it had
    // not answered yet, with one exception that is not a fault: when `latency_ms` is close
    // to `exporter.timeout_ms`, the exporter can give up on an answer the collector is
    // about to send. Its HTTP client (hyper, under reqwest) keeps the connection open (a
    // look at the socket at the decision found the client still there), so the collector
    // counts the request, as a real backend would. Spans of exports that ended without
    // any answer may therefore have arrived too.
    let (exports, forgotten) = (&report.exports, report.exports_forgotten);
    prop_assert_eq!(forgotten, 0);
    let unanswered: u64 = exports
        .iter()
        .filter(|e| e.outcome == Outcome::Failed && e.last_status.is_none())
        .map(|e| e.spans)
        .sum();
    prop_assert!(
        s.received <= s.exported + s.lost_at_kill + unanswered,
        "received {} > exported {} + lost at kill {} + unanswered {} in {:?}",
        s.received,
        s.exported,
        s.lost_at_kill,
        unanswered,
        overrides
    );
    if s.received > s.exported + s.lost_at_kill {
        CROSSED.fetch_add(1, Relaxed);
    }
    let grace = Duration::from_millis(settings.shutdown.grace_ms);
    let bound = Duration::from_secs_f64(duration)
        + shutdown_timeout(settings.tracing.semantics)
        + grace
        + PATIENCE;
    prop_assert!(
        took < bound,
        "{:?} took {:?}, over {:?}",
        overrides,
        took,
        bound
    );
    Ok(format!("{semantics} {fault} shutdown={with_shutdown}"))
}

#[test]
#[ignore = "several minutes for 300 scenarios; .ci/run runs a short form"]
fn random_scenarios_keep_the_identity_and_end() {
    let cases: u32 = std::env::var("GRACETRACE_PROPERTY_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let tally = Mutex::new(BTreeMap::<String, u32>::new());
    let config = Config {
        cases,
        failure_persistence: None,
        // A failing scenario is shrunk by running smaller ones; a few dozen are enough to
        // find the fault that matters, and each costs a run.
        max_shrink_iters: 64,
        ..Config::default()
    };
    let started = Instant::now();
    let result = TestRunner::new(config).run(&(runner(), fault(), shutdown()), |scenario| {
        let label = check(scenario)?;
        *tally.lock().unwrap().entry(label).or_default() += 1;
        Ok(())
    });
    let tally = tally.into_inner().unwrap();
    println!(
        "{} scenarios in {:.0} s:",
        tally.values().sum::<u32>(),
        started.elapsed().as_secs_f64()
    );
    for (label, n) in &tally {
        println!("  {n:4} {label}");
    }
    println!(
        "  received > exported + lost at kill, answers crossing the exporter's timeout: {}",
        CROSSED.load(Relaxed)
    );
    if let Err(e) = result {
        panic!("{e}");
    }
}
