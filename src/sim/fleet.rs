//! A fleet in virtual time: `fleet.replicas` runners, each the lone runner of this module
//! (the same rule books, the same calibration), run together (in time order, or a second
//! apart when nothing but the router joins them), sharing the scenario's arrivals through
//! the router (`route.rs`) and, with `fleet.backend_ingest_limit_spans_per_s`, one
//! backend's ingestion quota. A deploy at `shutdown.at_s` SIGTERMs them all at once or in
//! waves; each SIGTERMed replica's replacement takes traffic `fleet.startup_s` after its
//! SIGTERM (never before the platform stops routing to the old one) and runs to the end
//! of traffic.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::rc::Rc;
use std::time::Duration;

use super::arrivals::Arrivals;
use super::route::{Router, Window};
use super::{Backend, Calibration, Part, Sim, SimError, SimOutcome, check, check_model_times};
use crate::config::Settings;
use crate::config::draws::splitmix64;
use crate::record::fleet::{FleetReport, FleetTotals, ReplicaRow};
use crate::record::{LatencyHistogram, ServiceTimes};
use crate::workload::arrival::Schedule;

/// The seed of replica `replica`'s fault and backoff draws: the workload seed for the
/// first, so a fleet of one draws what a lone runner draws; the others their own, so
/// their backends' errors and jitter are not the same draws in lockstep.
pub fn replica_seed(seed: u64, replica: usize) -> u64 {
    match replica {
        0 => seed,
        r => splitmix64(seed ^ splitmix64(r as u64)),
    }
}

/// One lone runner that takes every `of`-th arrival of the scenario's schedule from the
/// `index`-th, with replica `index`'s draws: what replica `index` of a fleet of `of`
/// takes while all are in service.
pub fn run_share(
    settings: &Settings,
    costs: &Calibration,
    of: u64,
    index: u64,
) -> Result<SimOutcome, SimError> {
    let arrivals = Arrivals::Share {
        schedule: Schedule::new(&settings.workload),
        of: of.max(1),
        index,
        next: None,
    };
    let part = Part {
        draw_seed: replica_seed(settings.workload.seed, index as usize),
        ..Part::lone(arrivals, settings)
    };
    super::run_part(settings, costs, part, None)
}

/// One process of the fleet, as planned before the run.
struct Member {
    settings: Settings,
    window: Window,
    replacement: bool,
    wave: Option<usize>,
    sigterm: Option<Duration>,
    starts: bool,
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// The first replicas, then one replacement per SIGTERMed replica, with their times.
fn plan(settings: &Settings) -> Vec<Member> {
    let f = &settings.fleet;
    let n = f.replicas.max(1);
    let end = secs(settings.workload.duration_s);
    let lag = Duration::from_millis(settings.shutdown.routing_lag_ms);
    let mut members: Vec<Member> = Vec::with_capacity(2 * n);
    let mut replacements = Vec::new();
    for slot in 0..n {
        let mut own = settings.clone();
        let at_s = settings
            .shutdown
            .at_s
            .map(|first| f.wave_at_s(first, f.wave_of(slot)));
        own.shutdown.at_s = at_s;
        // The lone runner's own conversion, so its SIGTERM comes when the router thinks.
        let sigterm = at_s.map(secs);
        let routing_end = sigterm.map(|t| t + lag);
        let mut horizon = Duration::MAX;
        if let (Some(sigterm), Some(routing_end)) = (sigterm, routing_end) {
            let ready = (sigterm + secs(f.startup_s)).max(routing_end);
            let mut next = settings.clone();
            next.shutdown.at_s = None;
            if ready < end {
                horizon = ready;
            }
            replacements.push(Member {
                settings: next,
                window: Window {
                    slot,
                    ready,
                    routing_end: None,
                    horizon: Duration::MAX,
                },
                replacement: true,
                wave: None,
                sigterm: None,
                starts: ready < end,
            });
        }
        members.push(Member {
            settings: own,
            window: Window {
                slot,
                ready: Duration::ZERO,
                routing_end,
                horizon,
            },
            replacement: false,
            wave: sigterm.map(|_| f.wave_of(slot)),
            sigterm,
            starts: true,
        });
    }
    members.extend(replacements);
    members
}

/// Runs the fleet `settings.fleet` describes; the outcome's counts are its totals and
/// its `fleet` the rows. A fleet of one is the lone runner, plus its replacement.
pub fn run_fleet(settings: &Settings, costs: &Calibration) -> Result<SimOutcome, SimError> {
    fleet(settings, costs, false)
}

/// [`run_fleet`], in strict time order even without a shared quota when `time_order`.
fn fleet(
    settings: &Settings,
    costs: &Calibration,
    time_order: bool,
) -> Result<SimOutcome, SimError> {
    check(settings)?;
    // As a lone runner's (`run_part`): without the model's times a replica would serve
    // the model at the synthetic workload's.
    check_model_times(settings, costs)?;
    let members = plan(settings);
    let windows = members.iter().map(|m| m.window).collect();
    let slots = settings.fleet.replicas.max(1);
    let router = Rc::new(RefCell::new(Router::new(
        Schedule::new(&settings.workload),
        windows,
        slots,
    )));
    let backend = settings
        .fleet
        .backend_ingest_limit_spans_per_s
        .map(|limit| {
            Rc::new(RefCell::new(Backend {
                limit,
                bucket: Default::default(),
            }))
        });
    let start = |j: usize| {
        let part = Part {
            arrivals: Arrivals::Routed {
                router: Rc::clone(&router),
                replica: j,
            },
            draw_seed: replica_seed(settings.workload.seed, j),
            start: members[j].window.ready,
            backend: backend.clone(),
        };
        let mut sim = Sim::new(&members[j].settings, costs, part);
        sim.start();
        sim
    };
    let sims = match backend.is_some() || time_order {
        true => in_time_order(&members, &start),
        false => by_the_second(&members, &start),
    };
    let arrivals = {
        let mut r = router.borrow_mut();
        r.rest();
        r.routed
    };
    Ok(outcome(settings, &members, sims, arrivals))
}

/// Every replica's events in one time order, ties going to the lower number: replicas
/// that share a backend's quota must meet it in the order their exports reach it.
fn in_time_order<'a>(members: &[Member], start: &dyn Fn(usize) -> Sim<'a>) -> Vec<Option<Sim<'a>>> {
    let mut sims: Vec<Option<Sim>> = members.iter().map(|_| None).collect();
    let mut order: BinaryHeap<Reverse<(u64, usize)>> = (members.iter().enumerate())
        .filter(|(_, m)| m.starts)
        .map(|(j, m)| Reverse((nanos(m.window.ready), j)))
        .collect();
    while let Some(Reverse((_, j))) = order.pop() {
        let sim = sims[j].get_or_insert_with(|| start(j));
        // This replica's events up to the next one another replica has, ties going to
        // the lower number.
        let bound = order.peek().map(|Reverse(next)| *next);
        while let Some(key) = sim.next_key() {
            let at = (key >> 64) as u64;
            if bound.is_some_and(|b| (at, j) > b) {
                order.push(Reverse((at, j)));
                break;
            }
            if !sim.step() {
                break;
            }
        }
    }
    sims
}

/// How far one replica runs ahead of the others when nothing but the router joins them.
const AHEAD: Duration = Duration::from_secs(1);

/// Without a shared quota the replicas meet only in the router, and the router's choices
/// are planned before the run (an arrival goes by the replicas' windows, never by what a
/// replica is doing; it keeps each replica's arrivals in a queue of its own). So each
/// replica may run [`AHEAD`] of the others and every count comes out as in
/// [`in_time_order`] (a test), while the replicas' heap, nearly two operations an event
/// there (a quarter of a 100-replica hour), is not needed at all.
fn by_the_second<'a>(members: &[Member], start: &dyn Fn(usize) -> Sim<'a>) -> Vec<Option<Sim<'a>>> {
    let mut sims: Vec<Option<Sim>> = members.iter().map(|_| None).collect();
    let mut done = vec![false; members.len()];
    let mut until = Duration::ZERO;
    loop {
        until += AHEAD;
        let mut waiting = false;
        for (j, member) in members.iter().enumerate() {
            if !member.starts || done[j] {
                continue;
            }
            if member.window.ready > until {
                waiting = true;
                continue;
            }
            let sim = sims[j].get_or_insert_with(|| start(j));
            loop {
                match sim.next_key() {
                    Some(key) if (key >> 64) as u64 > nanos(until) => {
                        waiting = true;
                        break;
                    }
                    Some(_) if sim.step() => {}
                    _ => {
                        done[j] = true;
                        break;
                    }
                }
            }
        }
        if !waiting {
            return sims;
        }
    }
}

fn nanos(at: Duration) -> u64 {
    u64::try_from(at.as_nanos()).unwrap_or(u64::MAX)
}

/// The rows, and the totals as the outcome's own counts.
fn outcome(
    settings: &Settings,
    members: &[Member],
    sims: Vec<Option<Sim>>,
    arrivals: u64,
) -> SimOutcome {
    let mut total = SimOutcome::default();
    let mut t = FleetTotals::default();
    let (mut latency, mut service) = (LatencyHistogram::default(), ServiceTimes::default());
    let mut rows = Vec::with_capacity(members.len());
    for (member, sim) in members.iter().zip(sims) {
        let o = match sim {
            Some(sim) => {
                let (l, s) = sim.traffic.histograms();
                latency.merge(l);
                service.merge(s);
                sim.outcome()
            }
            None => SimOutcome::default(),
        };
        t.spans.add(&o.spans);
        t.requests.add_counts(&o.requests);
        t.replicas_killed += usize::from(o.killed);
        t.http_attempts += o.http_attempts;
        t.http_throttled += o.http_throttled;
        t.http_retries += o.http_retries;
        total.peak_queue = total.peak_queue.max(o.peak_queue);
        total.http_bytes += o.http_bytes;
        total.duration_ms = total.duration_ms.max(o.duration_ms);
        rows.push(row(member, o));
    }
    t.lost = t.spans.lost();
    t.unaccounted = t.spans.unaccounted();
    t.requests_unrouted = arrivals.saturating_sub(t.requests.sent);
    t.requests.latency_ms = latency.summary();
    t.requests.service_ms = service.summary();
    total.spans = t.spans;
    total.requests = t.requests;
    total.killed = t.replicas_killed > 0;
    total.http_attempts = t.http_attempts;
    total.http_throttled = t.http_throttled;
    total.http_retries = t.http_retries;
    total.fleet = Some(report(settings, rows, t));
    total
}

fn row(member: &Member, o: SimOutcome) -> ReplicaRow {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let slot = member.window.slot;
    ReplicaRow {
        replica: match member.replacement {
            false => format!("replica {slot}"),
            true => format!("replica {slot} (replacement)"),
        },
        slot,
        replacement: member.replacement,
        wave: member.wave,
        ready_ms: ms(member.window.ready),
        sigterm_ms: member.sigterm.map(ms),
        routing_end_ms: member.window.routing_end.map(ms),
        sigkill_ms: o.shutdown.as_ref().and_then(|s| s.sigkill_ms),
        end_ms: o.duration_ms,
        never_started: !member.starts,
        killed: o.killed,
        spans: o.spans,
        lost: o.spans.lost(),
        unaccounted: o.spans.unaccounted(),
        requests: o.requests,
        peak_queue: o.peak_queue,
        http_attempts: o.http_attempts,
        http_bytes: o.http_bytes,
        http_throttled: o.http_throttled,
        http_retries: o.http_retries,
    }
}

fn report(settings: &Settings, rows: Vec<ReplicaRow>, totals: FleetTotals) -> FleetReport {
    let f = &settings.fleet;
    FleetReport {
        clock: "virtual time only".into(),
        replicas: f.replicas,
        rollout: f.rollout.name().into(),
        max_unavailable: f.max_unavailable.text(),
        per_wave: f.per_wave(),
        waves: f.waves(),
        wave_interval_s: f.wave_interval_s,
        startup_s: f.startup_s,
        backend_ingest_limit_spans_per_s: f.backend_ingest_limit_spans_per_s,
        rows,
        totals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{TEST_COSTS, test_settings};

    /// Replicas a second apart from each other end with the counts of the strict time
    /// order, row by row: a rolling deploy with a routing lag, replacements and bursts
    /// that overflow the queues, under each SDK.
    #[test]
    fn running_a_second_ahead_changes_nothing() {
        for semantics in ["python", "rust", "js", "sdk"] {
            let settings = test_settings(&[
                ("tracing.semantics", semantics),
                ("workload.duration_s", "40"),
                ("workload.rate_per_s", "300"),
                ("workload.burst_every_s", "3"),
                ("workload.burst_size", "200"),
                ("batch.max_queue_size", "64"),
                ("batch.max_export_batch_size", "32"),
                ("collector.latency_ms", "400"),
                ("shutdown.platform", "fal"),
                ("shutdown.at_s", "10"),
                ("fleet.replicas", "7"),
                ("fleet.rollout", "waves"),
                ("fleet.max_unavailable", "2"),
                ("fleet.wave_interval_s", "4"),
                ("fleet.startup_s", "3"),
            ]);
            let strict = fleet(&settings, &TEST_COSTS, true).unwrap();
            let ahead = fleet(&settings, &TEST_COSTS, false).unwrap();
            let json = |o: &SimOutcome| serde_json::to_string(o).unwrap();
            assert!(strict.spans.lost() > 0, "{semantics}: {:?}", strict.spans);
            assert_eq!(json(&strict), json(&ahead), "{semantics}");
        }
    }

    /// A fleet serving the model without the model's measured times is refused, as a
    /// lone runner is, rather than served at the synthetic workload's times.
    #[test]
    fn a_fleet_of_the_model_needs_its_times() {
        let settings = test_settings(&[("workload.kind", "model"), ("fleet.replicas", "3")]);
        let refused = run_fleet(&settings, &TEST_COSTS).unwrap_err();
        assert!(matches!(refused, SimError::NoModelTimes), "{refused}");
    }
}
