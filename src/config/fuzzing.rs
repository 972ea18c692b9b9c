//! The fuzz passes (issue 11): proptest over the OTLP decoder (`collector/decode.rs`) and
//! the scenario parser (`config/scenario.rs`), from the seeds kept in `tests/fuzz/`,
//! mutated. Every `cargo test` runs a short pass (256 cases each); a long one runs for as
//! many seconds as `GRACETRACE_FUZZ_SECS` says:
//!
//! ```text
//! GRACETRACE_FUZZ_SECS=600 cargo test --lib fuzz_ -- --nocapture
//! ```
//!
//! (cargo-fuzz needs a nightly toolchain and sanitizer builds of the whole dependency
//! stack, burn and wgpu included: far past CI's budget on two cores. proptest runs in
//! the ordinary test build and shrinks a failure to a small input.)

use std::path::Path;
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseResult, TestRunner};

/// Cases per batch; a short pass is one batch.
const BATCH: u32 = 256;

/// Runs `test` over `strategy` in batches until `GRACETRACE_FUZZ_SECS` have passed (one
/// batch without it); panics with the shrunk input on the first failure or panic.
pub(crate) fn run<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> TestCaseResult) {
    let secs: Option<u64> = std::env::var("GRACETRACE_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok());
    let start = Instant::now();
    let mut runs = 0u64;
    loop {
        let config = Config {
            cases: BATCH,
            failure_persistence: None,
            ..Config::default()
        };
        if let Err(e) = TestRunner::new(config).run(&strategy, &test) {
            panic!("{name}: {e}");
        }
        runs += u64::from(BATCH);
        if secs.is_none_or(|s| start.elapsed().as_secs() >= s) {
            break;
        }
    }
    println!(
        "{name}: {runs} inputs in {:.1} s, none crashed or broke a property",
        start.elapsed().as_secs_f64()
    );
}

/// The seed files under `tests/fuzz/<dir>`, sorted by name.
pub(crate) fn seeds(dir: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz")
        .join(dir);
    let mut paths: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// One edit of an input; positions are taken modulo its length.
#[derive(Clone, Debug)]
pub(crate) enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    /// Copies a stretch of the input over another place (repeats structure).
    Splice(usize, usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Flip(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<usize>(), 1..32usize).prop_map(|(i, n)| Edit::Delete(i, n)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<usize>(), 1..64usize).prop_map(|(a, b, n)| Edit::Splice(a, b, n)),
    ]
}

/// Applies `edits` to `input`.
pub(crate) fn apply(mut input: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: usize, len: usize| if len == 0 { 0 } else { i % (len + 1) };
        match e {
            Edit::Flip(i, b) if !input.is_empty() => {
                let i = i % input.len();
                input[i] ^= b;
            }
            Edit::Flip(..) => {}
            Edit::Insert(i, bytes) => {
                let i = at(*i, input.len());
                input.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let i = at(*i, input.len());
                let end = (i + n).min(input.len());
                input.drain(i..end);
            }
            Edit::Truncate(i) => input.truncate(at(*i, input.len())),
            Edit::Splice(from, to, n) => {
                let from = at(*from, input.len());
                let piece: Vec<u8> = input[from..(from + n).min(input.len())].to_vec();
                let to = at(*to, input.len());
                input.splice(to..to, piece);
            }
        }
    }
    input
}

/// A seed from `seeds`, edited: what the fuzz passes feed their targets (and, one time in
/// eight, bytes with no seed at all).
pub(crate) fn mutated(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let count = seeds.len();
    prop_oneof![
        7 => (0..count, prop::collection::vec(edit(), 0..6))
            .prop_map(move |(i, edits)| apply(seeds[i].clone(), &edits)),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}
