//! The js rules against a real Node.js app: tests/apps/node/runner.js (the seed's span
//! tree under open-loop traffic, the real `@opentelemetry/sdk-trace` 2.12.1 and OTLP/HTTP
//! protobuf exporter 0.223.1) exporting to the embedded collector, really SIGTERMed, and
//! SIGKILLed at the end of the grace. The simulator, given the same traffic, batch
//! settings, faults and grace, must predict what the collector received and whether the
//! app was killed, within the agreement test's tolerance (one export batch or 2% of the
//! spans, whichever is larger), with the js rules. The python and rust rules are run
//! beside them and printed (`--nocapture`), and where the queue holds several batches at
//! SIGTERM against a slow backend the python rules are shown wrong.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use gracetrace::collector::{Collector, CollectorConfig};
use gracetrace::config::Settings;
use gracetrace::lifecycle::probe::app_env;
use gracetrace::record::report::{Calibration, Report};
use gracetrace::session::virtual_clock;

use crate::common::{PATIENCE, no_env, node_app, node_dir, node_ready};

/// One shutdown scenario: the runner's traffic, the grace, and gracetrace knobs (batch
/// settings, collector faults) shared by the real run and the simulation.
struct Case {
    name: &'static str,
    requests_per_s: f64,
    sigterm_s: f64,
    grace_ms: u64,
    /// `(every_s, size)`: that many requests at once, every so often.
    burst: Option<(f64, usize)>,
    knobs: &'static [&'static str],
}

/// What the real app did.
struct Real {
    ended: u64,
    received: u64,
    killed: bool,
}

/// The simulator's settings for `case` with `semantics`: the same traffic (3 spans a
/// request, 1 ms each), arrivals stopping at SIGTERM as the runner's do.
fn settings(case: &Case, semantics: &str) -> Settings {
    let mut overrides = vec![
        format!("tracing.semantics={semantics}"),
        format!("workload.rate_per_s={}", case.requests_per_s),
        format!(
            "workload.duration_s={}",
            case.sigterm_s + case.grace_ms as f64 / 1000.0 + 1.0
        ),
        "workload.inference_ms=1".into(),
        "workload.upload_ms=0".into(),
        "workload.extra_spans=0".into(),
        "workload.concurrency=1024".into(),
        "workload.max_waiting=100000".into(),
        format!("shutdown.at_s={}", case.sigterm_s),
        format!("shutdown.grace_ms={}", case.grace_ms),
        "shutdown.routing_lag_ms=0".into(),
    ];
    if let Some((every, size)) = case.burst {
        overrides.push(format!("workload.burst_every_s={every}"));
        overrides.push(format!("workload.burst_size={size}"));
    }
    overrides.extend(case.knobs.iter().map(|k| k.to_string()));
    Settings::load(&no_env, None, &overrides).unwrap_or_else(|e| panic!("{}: {e}", case.name))
}

/// The app's stdout, line by line, on a channel.
fn lines(child: &mut Child) -> Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (send, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// Runs runner.js against the embedded collector with the case's faults: SIGTERM
/// `sigterm_s` after its traffic began, SIGKILL at the grace's end unless it exited.
fn run_real(case: &Case) -> Real {
    let settings = settings(case, "js");
    let collector = Collector::start(CollectorConfig::for_settings(&settings)).expect("collector");
    let mut cmd = Command::new("node");
    cmd.current_dir(node_dir())
        .arg(node_app("runner.js"))
        .arg(case.requests_per_s.to_string())
        .stdout(Stdio::piped());
    for (var, _) in std::env::vars() {
        if var.starts_with("OTEL_") || var.starts_with("GRACETRACE_") {
            cmd.env_remove(var);
        }
    }
    cmd.envs(app_env(&settings, &collector));
    if let Some((every, size)) = case.burst {
        cmd.env("GRACETRACE_BURST_EVERY_S", every.to_string())
            .env("GRACETRACE_BURST_SIZE", size.to_string());
    }
    cmd.env(
        "GRACETRACE_FLUSH_TIMEOUT_MS",
        settings.shutdown.flush_timeout_ms.to_string(),
    );
    let mut child = cmd.spawn().expect("start node");
    let lines = lines(&mut child);
    let serving = lines.recv_timeout(PATIENCE).expect("the runner started");
    assert_eq!(serving, "serving");
    std::thread::sleep(Duration::from_secs_f64(case.sigterm_s));
    // The pid is our child's, not yet reaped.
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "SIGTERM to the runner");
    let deadline = Instant::now() + Duration::from_millis(case.grace_ms);
    let mut killed = false;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() >= deadline {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            killed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let text: Vec<String> = lines.try_iter().collect();
    let ended = text
        .iter()
        .find_map(|l| l.strip_prefix("spans ended: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}: no `spans ended` line: {text:?}", case.name));
    // Requests whose bodies arrived before the kill are still counted.
    let settle = Instant::now() + PATIENCE;
    while collector.stats().requests_in_flight > 0 && Instant::now() < settle {
        std::thread::sleep(Duration::from_millis(10));
    }
    Real {
        ended,
        received: collector.stats().spans_received,
        killed,
    }
}

fn costs() -> &'static Calibration {
    static COSTS: OnceLock<Calibration> = OnceLock::new();
    COSTS.get_or_init(|| virtual_clock::calibrate().expect("the calibration run"))
}

fn killed(report: &Report) -> bool {
    report.shutdown.as_ref().is_some_and(|s| s.killed)
}

/// Whether the simulation with `semantics` agrees with the real run: received within the
/// tolerance, and the same verdict. Returns the line to print and the verdict.
fn compare(case: &Case, real: &Real, semantics: &str) -> (String, bool) {
    let settings = settings(case, semantics);
    let virt = virtual_clock::run_virtual(&settings, costs()).expect("the virtual run");
    let c = &virt.spans.counts;
    let created = real.ended.max(c.created) as f64;
    let tolerance = (settings.batch.max_export_batch_size as f64).max(0.02 * created);
    let received_ok = (real.received as f64 - c.received as f64).abs() <= tolerance;
    let agrees = received_ok && killed(&virt) == real.killed;
    let verdict = |k| if k { "SIGKILL" } else { "exit" };
    let line = format!(
        "{:<18} {semantics:<7} created {:>6} dropped {:>5} received {:>6} (real {:>6}, \
         tolerance {tolerance:.0}) {:>7} (real {:>7}) {}",
        case.name,
        c.created,
        c.dropped_queue_full,
        c.received,
        real.received,
        verdict(killed(&virt)),
        verdict(real.killed),
        if agrees { "agrees" } else { "DISAGREES" }
    );
    (line, agrees)
}

/// Runs `case` for real once, then in virtual time with each rule book; the js rules must
/// agree. Returns whether the python and rust rules agreed.
fn js_rules_agree(case: &Case) -> Option<(bool, bool)> {
    if !node_ready() {
        return None;
    }
    let real = run_real(case);
    println!(
        "{}: the real Node runner ended {} spans, the collector received {}, {}",
        case.name,
        real.ended,
        real.received,
        if real.killed {
            "SIGKILLed"
        } else {
            "it exited"
        }
    );
    let mut agreed = Vec::new();
    for semantics in ["js", "python", "rust"] {
        let (line, agrees) = compare(case, &real, semantics);
        println!("{line}");
        agreed.push(agrees);
    }
    assert!(
        agreed[0],
        "the js rules disagree with the real Node app in {}",
        case.name
    );
    Some((agreed[1], agreed[2]))
}

#[test]
fn node_healthy_backend_exits_with_every_span() {
    js_rules_agree(&Case {
        name: "healthy",
        requests_per_s: 300.0,
        sigterm_s: 2.0,
        grace_ms: 5000,
        burst: None,
        knobs: &[],
    });
}

/// A backend that takes 0.8 s a batch, a queue of four batches at SIGTERM, a 2 s grace:
/// Node sends the four at once and exits; python's rules send one after another and
/// predict a SIGKILL.
#[test]
fn node_backend_slower_than_the_grace_flushes_in_parallel() {
    let Some((python, _)) = js_rules_agree(&Case {
        name: "slower than grace",
        requests_per_s: 600.0,
        sigterm_s: 3.0,
        grace_ms: 2000,
        burst: None,
        knobs: &["collector.latency_ms=800"],
    }) else {
        return;
    };
    assert!(
        !python,
        "the python rules should not predict a parallel flush"
    );
}

/// 3,000 spans at once into a buffer of 2,048 while a batch is in flight: the newest are
/// dropped; SIGTERM comes while the backlog is still being sent, one batch at a time.
#[test]
fn node_burst_overflows_the_buffer() {
    js_rules_agree(&Case {
        name: "burst overflow",
        requests_per_s: 50.0,
        sigterm_s: 2.0,
        grace_ms: 5000,
        burst: Some((1.5, 1000)),
        knobs: &["collector.latency_ms=200"],
    });
}

#[test]
fn node_outage_retries_into_the_kill() {
    js_rules_agree(&Case {
        name: "outage",
        requests_per_s: 300.0,
        sigterm_s: 2.0,
        grace_ms: 3000,
        burst: None,
        knobs: &["collector.outage=true"],
    });
}

#[test]
fn node_throttled_with_retry_after() {
    js_rules_agree(&Case {
        name: "429 Retry-After",
        requests_per_s: 300.0,
        sigterm_s: 2.0,
        grace_ms: 5000,
        burst: None,
        knobs: &[
            "collector.error_rate=0.5",
            "collector.error_status=429",
            "collector.retry_after_s=1",
        ],
    });
}
