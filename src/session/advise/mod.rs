//! `gracetrace advise`: for one scenario's traffic, backend and platform, which settings
//! lose nothing, found by simulated runs (`crate::sim`), never by a formula. Each answer
//! keeps the runs it came from: a probe is one change run with every arrival seed, judged
//! by its worst run, and a search is the probes a bisection made.

pub mod render;
mod search;

use rayon::prelude::*;

use crate::config::knobs;
use crate::config::{ConfigError, HandleExit, Settings, Source};
use crate::sim::{self, Calibration, SimError, SimOutcome};

pub use search::Search;

/// Why the advisor could not run.
#[derive(Debug, thiserror::Error)]
pub enum AdviseError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// What a probe's worst run lost and delivered.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub dropped_queue_full: u64,
    pub lost_at_kill: u64,
    /// Dropped, failed or lost at kill: every sampled span the collector did not get.
    pub lost: u64,
    pub received: u64,
    pub killed: bool,
}

impl Summary {
    fn of(o: &SimOutcome) -> Summary {
        let s = &o.spans;
        Summary {
            dropped_queue_full: s.dropped_queue_full,
            lost_at_kill: s.lost_at_kill,
            lost: s.lost(),
            received: s.received,
            killed: o.killed,
        }
    }

    /// The worst of several runs: the most lost, the fewest received, killed if any was.
    fn worst(runs: &[Summary]) -> Summary {
        let max = |f: fn(&Summary) -> u64| runs.iter().map(f).max().unwrap_or(0);
        Summary {
            dropped_queue_full: max(|s| s.dropped_queue_full),
            lost_at_kill: max(|s| s.lost_at_kill),
            lost: max(|s| s.lost),
            received: runs.iter().map(|s| s.received).min().unwrap_or(0),
            killed: runs.iter().any(|s| s.killed),
        }
    }
}

/// The export costs each probe also runs with, as multiples of the calibrated ones. A
/// calibration on a busy machine is off by about this much, and a queue size at the edge
/// of dropping turns on when an export returns relative to a burst; a setting counts as
/// safe only if it is safe across these.
pub const COST_SCALES: [f64; 3] = [0.5, 1.0, 2.0];

/// One simulated run of a probe: its arrival seed and export-cost scale.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProbeRun {
    pub seed: u64,
    pub cost_scale: f64,
    pub summary: Summary,
}

/// One change (`key=value` pairs on top of the scenario) run with every seed and cost
/// scale, judged by its worst run.
#[derive(Clone, Debug)]
pub struct Probe {
    pub change: Vec<(&'static str, String)>,
    pub runs: Vec<ProbeRun>,
    pub worst: Summary,
}

/// A way to stop the shutdown's losses, and what it would lose.
#[derive(Clone, Debug)]
pub struct ShutdownOption {
    pub what: &'static str,
    /// The runs; `found` is the setting that loses nothing at kill, if any did.
    pub search: Search,
}

impl ShutdownOption {
    /// The probe the option stands on: the one it found, else the best it tried.
    pub fn probe(&self) -> Option<&Probe> {
        self.search.chosen()
    }

    pub fn stops_it(&self) -> bool {
        self.search.found.is_some()
    }
}

#[derive(Clone, Debug)]
pub struct ShutdownAdvice {
    /// When SIGTERM came, and whether the advisor chose it (the scenario has none).
    pub at_s: f64,
    pub assumed: bool,
    pub baseline: Probe,
    pub options: Vec<ShutdownOption>,
}

impl ShutdownAdvice {
    /// The option that stops the losses and keeps the most spans (ties: the first listed,
    /// the least intrusive).
    pub fn cheapest(&self) -> Option<&ShutdownOption> {
        self.options
            .iter()
            .filter(|o| o.stops_it())
            .rev()
            .max_by_key(|o| o.probe().map_or(0, |p| p.worst.received))
    }
}

/// Everything the advisor found.
#[derive(Clone, Debug)]
pub struct Advice {
    pub scenario: String,
    pub semantics: &'static str,
    pub seeds: Vec<u64>,
    pub costs: Calibration,
    pub baseline: Probe,
    /// The smallest `max_queue_size` that drops nothing at the scenario's delay.
    pub queue: Search,
    /// The largest `schedule_delay_ms` that drops nothing at the scenario's queue size,
    /// and at the recommended one.
    pub delay_now: Search,
    pub delay_with_queue: Option<Search>,
    pub shutdown: ShutdownAdvice,
}

/// The scenario, its seeds and costs: what every probe starts from.
pub struct Advisor {
    base: Settings,
    costs: Calibration,
    seeds: Vec<u64>,
}

impl Advisor {
    /// `seeds` arrival seeds from the scenario's own.
    pub fn new(base: &Settings, costs: Calibration, seeds: usize) -> Result<Advisor, AdviseError> {
        sim::check(base)?;
        sim::check_model_times(base, &costs)?;
        let first = base.workload.seed;
        let seeds = (0..seeds.max(1) as u64)
            .map(|i| first.wrapping_add(i))
            .collect();
        Ok(Advisor {
            base: base.clone(),
            costs,
            seeds,
        })
    }

    /// Runs `change` on top of `on` with every seed and cost scale, in parallel. A queue below the
    /// export batch takes the batch down with it, as both SDKs require.
    fn probe_on(
        &self,
        on: &Settings,
        change: &[(&'static str, String)],
    ) -> Result<Probe, AdviseError> {
        let mut settings = on.clone();
        for (key, value) in change {
            settings.set(key, value, Source::CommandLine)?;
        }
        settings.batch.fit_batch_to_queue();
        settings.validate(Source::CommandLine)?;
        let variants: Vec<(u64, f64)> = self
            .seeds
            .iter()
            .flat_map(|&seed| COST_SCALES.map(|scale| (seed, scale)))
            .collect();
        let runs = variants
            .par_iter()
            .map(|&(seed, cost_scale)| {
                let mut s = settings.clone();
                s.workload.seed = seed;
                let costs = Calibration {
                    per_batch_ms: self.costs.per_batch_ms * cost_scale,
                    per_span_ms: self.costs.per_span_ms * cost_scale,
                    ..self.costs.clone()
                };
                let summary = Summary::of(&sim::run(&s, &costs)?);
                Ok(ProbeRun {
                    seed,
                    cost_scale,
                    summary,
                })
            })
            .collect::<Result<Vec<_>, SimError>>()?;
        let worst = Summary::worst(&runs.iter().map(|r| r.summary).collect::<Vec<_>>());
        Ok(Probe {
            change: change.to_vec(),
            runs,
            worst,
        })
    }

    pub fn run(&self) -> Result<Advice, AdviseError> {
        let b = &self.base.batch;
        let baseline = self.probe_on(&self.base, &[])?;
        let no_drop = |s: &Summary| s.dropped_queue_full == 0;
        let queue = self.search(
            &self.base,
            "batch.max_queue_size",
            search::Domain::whole(1, knob_max("batch.max_queue_size"), b.max_queue_size as u64),
            search::Want::Smallest,
            &no_drop,
        )?;
        let delays = |start| search::Domain::whole(1, knob_max("batch.schedule_delay_ms"), start);
        let delay_now = self.search(
            &self.base,
            "batch.schedule_delay_ms",
            delays(b.schedule_delay_ms),
            search::Want::Largest,
            &no_drop,
        )?;
        let delay_with_queue = match &queue.found {
            Some(q) if *q != b.max_queue_size.to_string() => {
                let mut at = self.base.clone();
                at.set("batch.max_queue_size", q, Source::CommandLine)?;
                at.batch.fit_batch_to_queue();
                let search = self.search(
                    &at,
                    "batch.schedule_delay_ms",
                    delays(b.schedule_delay_ms),
                    search::Want::Largest,
                    &no_drop,
                )?;
                Some(search.with_context("batch.max_queue_size", q))
            }
            _ => None,
        };
        Ok(Advice {
            scenario: self.base.name.clone(),
            semantics: self.base.tracing.semantics.name(),
            seeds: self.seeds.clone(),
            costs: self.costs.clone(),
            baseline,
            queue,
            delay_now,
            delay_with_queue,
            shutdown: self.shutdown()?,
        })
    }

    /// The shutdown as the scenario plays it (or, without one, SIGTERM at the end of its
    /// traffic), and each change that might stop its losses at SIGKILL.
    fn shutdown(&self) -> Result<ShutdownAdvice, AdviseError> {
        let mut on = self.base.clone();
        let assumed = on.shutdown.at_s.is_none();
        let at_s = on.shutdown.at_s.unwrap_or(on.workload.duration_s);
        on.shutdown.at_s = Some(at_s);
        let baseline = self.probe_on(&on, &[])?;
        let mut options = Vec::new();
        if baseline.worst.lost_at_kill > 0 {
            options = self.shutdown_options(&on)?;
        }
        Ok(ShutdownAdvice {
            at_s,
            assumed,
            baseline,
            options,
        })
    }

    fn shutdown_options(&self, on: &Settings) -> Result<Vec<ShutdownOption>, AdviseError> {
        let saved = |s: &Summary| s.lost_at_kill == 0;
        let lower = |key, now: u64| -> Result<Search, AdviseError> {
            let domain = search::Domain::whole(1, now.max(1), now.max(1));
            self.search(on, key, domain, search::Want::Largest, &saved)
        };
        let mut options = vec![ShutdownOption {
            what: "lower schedule_delay_ms",
            search: lower("batch.schedule_delay_ms", on.batch.schedule_delay_ms)?,
        }];
        if on.shutdown.handle_exit != HandleExit::Cancel {
            let probe = self.probe_on(on, &[("shutdown.handle_exit", "cancel".into())])?;
            options.push(ShutdownOption {
                what: "handle_exit = cancel",
                search: Search::single("shutdown.handle_exit", probe, &saved),
            });
        }
        options.push(ShutdownOption {
            what: "shorter exporter timeout_ms",
            search: lower("exporter.timeout_ms", on.exporter.timeout_ms)?,
        });
        let rate = (on.tracing.sample_rate * 100.0).floor() as u64;
        options.push(ShutdownOption {
            what: "lower sample_rate",
            search: self.search(
                on,
                "tracing.sample_rate",
                search::Domain::hundredths(rate),
                search::Want::Largest,
                &saved,
            )?,
        });
        Ok(options)
    }

    fn search(
        &self,
        on: &Settings,
        key: &'static str,
        domain: search::Domain,
        want: search::Want,
        ok: &dyn Fn(&Summary) -> bool,
    ) -> Result<Search, AdviseError> {
        Search::run(key, domain, want, ok, &mut |value| {
            self.probe_on(on, &[(key, value.to_string())])
        })
    }
}

/// The largest value a whole-number knob takes: the advisor searches up to the knob's
/// own bound, written once in `config::knobs`.
fn knob_max(key: &str) -> u64 {
    knobs::find(key)
        .and_then(|k| k.bounds.numeric())
        .map_or(1, |(_, max)| max as u64)
}

#[cfg(test)]
mod tests;
