//! gracetrace: see and tune how many OpenTelemetry spans an inference server loses.
//!
//! Data flows one way: `workload` makes requests, requests make spans through
//! `telemetry` (sampler, batch processor, OTLP/HTTP exporter), the spans arrive at the
//! embedded `collector`, and every step is written into `record`, from which the JSON
//! report and the window are built.
//!
//! The modules are layers, and a module uses only modules below it (lowest first):
//!
//! ```text
//! config      every knob: default, environment variable, TOML key, range
//! record      counters, events, time series, the report's types
//! collector   the embedded OTLP/HTTP receiver      telemetry   sampler, processor, exporter
//! workload    traffic: synthetic requests or the burn model
//! lifecycle   SIGTERM -> handle_exit -> drain -> teardown/force_flush -> exit or SIGKILL
//!             sim         the same runner, rule book and shutdown in virtual time
//! session     wires the layers into a run (headless) or a live engine (the window)
//! ui          draws snapshots and sends commands
//! cli         the command line: parses arguments, calls the layers, prints, exits
//! ```
//!
//! `lifecycle` and `sim` share a layer and never name each other; `sim` reads the
//! arrival schedule from `workload` and every decision from `telemetry::rules`.
//! `collector` and `telemetry` share a layer and never name each other: what they agree
//! on (headers, what SIGKILL asks the backend) is in `record::wire`. `.ci/layers` checks
//! the rule on every CI run.

pub mod cli;
pub mod collector;
pub mod config;
pub mod lifecycle;
pub mod record;
pub mod session;
pub mod sim;
pub mod telemetry;
#[cfg(feature = "gui")]
pub mod ui;
pub mod workload;
