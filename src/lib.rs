//! gracetrace: see and tune how many OpenTelemetry spans an inference server loses.
//!
//! Data flows one way, and the modules follow it:
//! `workload` makes requests, requests make spans through `telemetry` (sampler, batch
//! processor, OTLP/HTTP exporter), the spans arrive at the embedded `collector`, and every
//! step is written into `record`, from which the JSON report (and later the UI) is built.
//! `config` holds every knob; `run` drives one headless scenario end to end; `ui` is the
//! desktop window that drives a live session and draws the record.

pub mod collector;
pub mod config;
pub mod lifecycle;
pub mod record;
pub mod run;
pub mod telemetry;
pub mod ui;
pub mod workload;
