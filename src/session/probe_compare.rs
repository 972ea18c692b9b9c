//! `gracetrace probe --compare KEY=A,B,...`: what a setting costs the user's own app,
//! measured. The app is run once per value, each run a fresh process with a fresh
//! collector, the same schedule and seed, and SIGTERM at the same time, so the runs differ
//! only in that value: `tracing.enabled=false,true` is the measured overhead of tracing.

use std::time::Duration;

use crate::config::knobs::{self, Knob};
use crate::config::{Settings, Source};
use crate::lifecycle::probe::load::LoadPlan;
use crate::lifecycle::probe::target::LoadTarget;
use crate::lifecycle::probe::{
    APP_KNOBS, ProbeError, Protocol, SigtermWhen, run_load_probe, run_probe,
};
use crate::record::compare::{CompareReport, CompareRow, CompareRun};
use crate::record::probe::ProbeReport;

use super::probe_predict::predict;

/// The most values one comparison runs: each is a whole run of the app.
pub const MAX_VALUES: usize = 10;

/// The sections of knobs the probe applies itself (the embedded collector's faults and
/// limits, the shutdown it plays, the load it sends), besides [`APP_KNOBS`], which reach
/// the app through its environment.
const PROBE_SECTIONS: [&str; 3] = ["collector.", "shutdown.", "workload."];

/// Why a `--compare` was refused; each names the argument and what is allowed.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum CompareError {
    #[error("--compare {0:?}: expected KEY=A,B,... (from 2 to {MAX_VALUES} values)")]
    Form(String),
    #[error("--compare {arg:?}: unknown knob {key:?} (`gracetrace knobs` lists them)")]
    UnknownKnob { arg: String, key: String },
    #[error(
        "--compare {key}: neither the app nor the probe uses it; expected one of {} \
         (they reach the app's environment) or a collector.*, shutdown.* or workload.* knob",
        APP_KNOBS.join(", ")
    )]
    NotUsed { key: String },
    #[error("--compare {arg:?}: {count} values; expected from 2 to {MAX_VALUES}")]
    Count { arg: String, count: usize },
    #[error("--compare {key}={value:?} is invalid: {allowed}")]
    Value {
        key: String,
        value: String,
        allowed: String,
    },
    #[error(
        "--compare without --url needs --sigterm-at or shutdown.at_s, so that every run gets \
         SIGTERM at the same time"
    )]
    NoSigterm,
}

/// A checked `--compare`: the knob and its values, each in the knob's own spelling.
#[derive(Clone, Debug, PartialEq)]
pub struct Compare {
    pub key: &'static str,
    pub values: Vec<String>,
}

impl Compare {
    /// Parses `KEY=A,B,...` and checks every value against `base` (so a queue below the
    /// batch is refused here, before any run).
    pub fn parse(arg: &str, base: &Settings) -> Result<Compare, CompareError> {
        let (key, list) = arg
            .split_once('=')
            .ok_or_else(|| CompareError::Form(arg.to_owned()))?;
        let knob = knobs::find(key.trim()).ok_or_else(|| CompareError::UnknownKnob {
            arg: arg.to_owned(),
            key: key.trim().to_owned(),
        })?;
        if !used_by_probe(knob) {
            return Err(CompareError::NotUsed {
                key: knob.key.to_owned(),
            });
        }
        let values: Vec<&str> = list.split(',').map(str::trim).collect();
        if !(2..=MAX_VALUES).contains(&values.len()) || values.iter().any(|v| v.is_empty()) {
            return Err(CompareError::Count {
                arg: arg.to_owned(),
                count: values.iter().filter(|v| !v.is_empty()).count(),
            });
        }
        let mut compare = Compare {
            key: knob.key,
            values: Vec::new(),
        };
        for value in values {
            let settings = compare.settings(base, value)?;
            compare.values.push((knob.get)(&settings));
        }
        Ok(compare)
    }

    /// `base` with the knob at `value`; a queue set below the batch takes the batch down
    /// with it, as `sweep --vary` and the window's slider do.
    pub fn settings(&self, base: &Settings, value: &str) -> Result<Settings, CompareError> {
        let invalid = |e: crate::config::ConfigError| CompareError::Value {
            key: self.key.to_owned(),
            value: value.to_owned(),
            allowed: e.allowed,
        };
        let mut settings = base.clone();
        settings
            .set(self.key, value, Source::CommandLine)
            .map_err(invalid)?;
        if self.key == "batch.max_queue_size" {
            settings.batch.fit_batch_to_queue();
        }
        settings.validate(Source::CommandLine).map_err(invalid)?;
        Ok(settings)
    }
}

/// Whether a run of the probe can differ with this knob: it reaches the app's environment,
/// or the probe applies it.
fn used_by_probe(knob: &Knob) -> bool {
    APP_KNOBS.contains(&knob.key) || PROBE_SECTIONS.iter().any(|s| knob.key.starts_with(s))
}

/// Where each run's traffic and SIGTERM come from: the load `--url` describes (SIGTERM at
/// its plan's time), or SIGTERM this long after the app starts.
#[derive(Clone, Debug)]
// One per comparison: its size costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum CompareDrive {
    Load {
        target: LoadTarget,
        sigterm_after: Option<Duration>,
    },
    SigtermAfter(Duration),
}

/// Runs the app once per value, in order, each with gracetrace's prediction added, and
/// tells `started(i, value)` as each run begins. The first run that cannot start (the
/// command, the collector, readiness) ends the comparison with its error.
pub fn run_compare(
    base: &Settings,
    compare: &Compare,
    protocol: Protocol,
    command: &[String],
    drive: &CompareDrive,
    started: &dyn Fn(usize, &str),
) -> Result<CompareReport, ProbeError> {
    let mut runs = Vec::with_capacity(compare.values.len());
    for (i, value) in compare.values.iter().enumerate() {
        // Checked by `Compare::parse` against the same base.
        let Ok(settings) = compare.settings(base, value) else {
            continue;
        };
        started(i, value);
        let mut report = match drive {
            CompareDrive::Load {
                target,
                sigterm_after,
            } => {
                let plan = LoadPlan::new(&settings, target.clone(), *sigterm_after);
                run_load_probe(&settings, protocol, command, plan)?
            }
            CompareDrive::SigtermAfter(after) => {
                run_probe(&settings, protocol, command, SigtermWhen::After(*after))?
            }
        };
        add_prediction(&settings, &mut report);
        runs.push(CompareRun {
            value: value.clone(),
            row: CompareRow::of(&report),
            report,
        });
    }
    Ok(CompareReport {
        key: compare.key.to_owned(),
        runs,
    })
}

/// gracetrace's own prediction for the run's settings, or why there is none.
pub fn add_prediction(settings: &Settings, report: &mut ProbeReport) {
    match predict(settings, report) {
        Ok(prediction) => report.prediction = Some(prediction),
        Err(why) => report.prediction_error = Some(why.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A comparison of knobs the app reads or the probe applies, with the values in the
    /// knob's own spelling; the rest is refused naming the argument.
    #[test]
    fn compare_arguments_are_checked_before_any_run() {
        let base = Settings::default();
        let on_off = Compare::parse("tracing.enabled=false, true", &base).unwrap();
        assert_eq!(
            (on_off.key, on_off.values.as_slice()),
            (
                "tracing.enabled",
                &["false".to_owned(), "true".to_owned()][..]
            )
        );
        let rate = Compare::parse("tracing.sample_rate=0.1,1", &base).unwrap();
        assert_eq!(rate.values, ["0.1", "1"]);
        assert!(Compare::parse("collector.latency_ms=0,2000", &base).is_ok());
        let errors = [
            ("tracing.enabled", "expected KEY=A,B"),
            ("nope.knob=1,2", "unknown knob \"nope.knob\""),
            ("model.steps=1,2", "neither the app nor the probe uses it"),
            ("tracing.sample_rate=0.5", "1 values; expected from 2 to 10"),
            ("tracing.sample_rate=0.5,,1", "expected from 2 to 10"),
            (
                "tracing.sample_rate=0.5,7",
                "tracing.sample_rate=\"7\" is invalid",
            ),
        ];
        for (arg, wanted) in errors {
            let error = Compare::parse(arg, &base).unwrap_err().to_string();
            assert!(error.contains(wanted), "{arg}: {error}");
            assert!(error.starts_with("--compare"), "{arg}: {error}");
        }
        // A queue below the batch takes the batch down with it.
        let queue = Compare::parse("batch.max_queue_size=64,2048", &base).unwrap();
        let small = queue.settings(&base, "64").unwrap();
        assert!(small.batch.max_export_batch_size <= 64);
    }
}
