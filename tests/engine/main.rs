//! The engine's integration tests: the config, the sampler, the semantics profiles, the
//! collector, the accounting over every shipped scenario, the live session, shutdown, the
//! CLI and the real-process check.
//!
//! One binary, not one per file: every test binary links burn, wgpu and egui, and each
//! link costs CI time and disk (thirteen of them filled a CI machine's disk). The window's
//! tests (`tests/ui.rs`), the model's (`tests/model.rs`) and `tests/tracing_off.rs`, which
//! counts the threads of its own process, keep binaries of their own.

#[path = "../common/mod.rs"]
mod common;

mod accounting;
mod advise;
mod agreement;
mod collect_cli;
mod collector;
mod collector_grpc;
mod collector_limits;
mod config;
mod fleet;
mod https;
mod kill_under_load;
mod live;
mod node_fidelity;
mod probe;
mod probe_load;
mod probe_misbehaving;
mod probe_node;
mod property;
mod real_process;
mod run_ends;
mod sampler;
mod semantics;
mod shutdown;
mod sweep_cli;
mod your_app_load;
