//! The virtual clock's speed: what the issue promises, measured rather than timed in a
//! test. `hour`: one hour of 1,000 requests/s x 5 spans (18 million spans) with bursts
//! against a slow, jittery backend, simulated on one core. `sweep_6x6`: 36 cells of a
//! 60 s scenario (max_queue_size x schedule_delay_ms), in parallel on every core, as
//! `gracetrace sweep` runs them. `fleet`: 100 replicas sharing 1,000 requests/s for an
//! hour, a rolling deploy of 10 waves, on one core; `fleet_sweep_10x10`: 100 cells of
//! that fleet (max_unavailable x max_queue_size) on every core.
//!
//! The costs each run charges come from one real calibration run at the start (1.5 s),
//! as `run --clock virtual` and `sweep` measure them. Each bench checks once, outside the
//! timing, that the scenario made the spans it claims and that every span is accounted
//! for: a fast simulation of the wrong thing would be meaningless.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use gracetrace::config::{Settings, Source};
use gracetrace::session::sweep::{self, Grid, Vary};
use gracetrace::session::virtual_clock::calibrate;
use gracetrace::sim::{self, Calibration};

/// 1,000 requests/s, each a root span, `inference`, `upload` and 2 extra: 5 spans; a
/// burst of 2,000 requests every 10 s; a backend 300 ms away with up to 100 ms jitter.
fn traffic(duration_s: &str) -> Settings {
    let mut s = Settings::default();
    set_all(
        &mut s,
        &[
            ("name", "bench-sim"),
            ("workload.duration_s", duration_s),
            ("workload.rate_per_s", "1000"),
            ("workload.extra_spans", "2"),
            ("workload.inference_ms", "20"),
            ("workload.upload_ms", "1"),
            ("workload.concurrency", "64"),
            ("workload.max_waiting", "5000"),
            ("workload.burst_every_s", "10"),
            ("workload.burst_size", "2000"),
            ("collector.latency_ms", "300"),
            ("collector.jitter_ms", "100"),
        ],
    );
    s
}

/// Sets each knob; a bench scenario out of range is the bench's own typo.
fn set_all(s: &mut Settings, pairs: &[(&str, &str)]) {
    for (key, value) in pairs {
        if let Err(e) = s.set(key, value, Source::Default) {
            panic!("bench scenario: {e}");
        }
    }
}

/// Times `settings` run by the simulator on one core, `spans` spans a run.
fn one_core(c: &mut Criterion, (group, name): (&str, &str), settings: &Settings, spans: u64) {
    let costs = costs_once();
    let mut group = c.benchmark_group(group);
    group.sample_size(10);
    group.throughput(Throughput::Elements(spans));
    group.bench_function(name, |b| b.iter(|| sim::run(settings, costs)));
    group.finish();
}

/// The calibration, measured once for every bench.
fn costs_once() -> &'static Calibration {
    static COSTS: std::sync::OnceLock<Calibration> = std::sync::OnceLock::new();
    COSTS.get_or_init(|| calibrate().unwrap_or_else(|e| panic!("{e}")))
}

fn hour(c: &mut Criterion, costs: &Calibration) {
    let settings = traffic("3600");
    let once = sim::run(&settings, costs).unwrap_or_else(|e| panic!("{e}"));
    assert!(once.spans.created >= 18_000_000, "{:?}", once.spans);
    assert_eq!(once.spans.unaccounted(), 0, "{:?}", once.spans);
    println!("hour: {:?}, peak queue {}", once.spans, once.peak_queue);
    let name = ("sim", "hour_1000rps_x5_bursts_slow_backend");
    one_core(c, name, &settings, once.spans.created);
}

fn sweep_6x6(c: &mut Criterion, costs: &Calibration) {
    let settings = traffic("60");
    let varies = [
        "batch.max_queue_size=512..16384x2",
        "batch.schedule_delay_ms=100..3200x2",
    ]
    .map(|arg| Vary::parse(arg).unwrap_or_else(|e| panic!("{e}")));
    let grid = Grid::new(varies.to_vec()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(grid.len(), 36);
    let once =
        sweep::run(&settings, &grid, 1, costs, None, &|_, _| {}).unwrap_or_else(|e| panic!("{e}"));
    for cell in &once.cells {
        assert_eq!(
            cell.median().outcome.spans.unaccounted(),
            0,
            "{:?}",
            cell.values
        );
    }
    let mut group = c.benchmark_group("sweep");
    group.sample_size(10);
    group.bench_function("6x6_cells_of_60s", |b| {
        b.iter(|| sweep::run(&settings, &grid, 1, costs, None, &|_, _| {}))
    });
    group.finish();
}

/// 100 replicas, one hour, 1,000 requests/s in all (no bursts), each replica's
/// Kubernetes shutdown; at 10 minutes a deploy of 10 waves of 10, one a minute, each
/// replacement taking traffic 30 s after its SIGTERM.
fn fleet_settings() -> Settings {
    let mut s = traffic("3600");
    set_all(
        &mut s,
        &[
            ("workload.burst_size", "0"),
            ("shutdown.platform", "kubernetes"),
            ("shutdown.at_s", "600"),
            ("fleet.replicas", "100"),
            ("fleet.rollout", "waves"),
            ("fleet.max_unavailable", "10"),
            ("fleet.wave_interval_s", "60"),
            ("fleet.startup_s", "30"),
        ],
    );
    s
}

fn fleet(c: &mut Criterion, costs: &Calibration) {
    let settings = fleet_settings();
    let once = sim::run(&settings, costs).unwrap_or_else(|e| panic!("{e}"));
    let f = once.fleet.as_ref().expect("a fleet");
    assert_eq!((f.rows.len(), f.waves), (200, 10));
    assert!(once.requests.sent >= 3_400_000, "{:?}", once.requests);
    assert_eq!(once.spans.unaccounted(), 0, "{:?}", once.spans);
    assert!(f.rows.iter().all(|r| r.unaccounted == 0));
    println!("fleet: {:?}, {} lost", once.spans, f.totals.lost);
    let name = ("fleet", "100_replicas_hour_1000rps_10_waves");
    one_core(c, name, &settings, once.spans.created);
}

fn fleet_sweep_10x10(c: &mut Criterion, costs: &Calibration) {
    let settings = fleet_settings();
    let varies = [
        "fleet.max_unavailable=5,10,15,20,25,30,35,40,45,50",
        "batch.max_queue_size=512..262144x2",
    ]
    .map(|arg| Vary::parse(arg).unwrap_or_else(|e| panic!("{e}")));
    let grid = Grid::new(varies.to_vec()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(grid.len(), 100);
    let mut group = c.benchmark_group("fleet");
    group.sample_size(10);
    group.bench_function("sweep_10x10_cells_of_the_fleet", |b| {
        b.iter(|| sweep::run(&settings, &grid, 1, costs, None, &|_, _| {}))
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let costs = costs_once();
    hour(c, costs);
    sweep_6x6(c, costs);
    fleet(c, costs);
    fleet_sweep_10x10(c, costs);
}

criterion_group!(sim_benches, benches);
criterion_main!(sim_benches);
