//! `gracetrace sweep` as a user runs it: bad input is refused with exit code 2 and one
//! line naming it, and a sweep writes a table, JSON and CSV whose cells are the product
//! of the `--vary` lists, in order, each accounted for.
//! Sharded: `--shard K/N` parts with one `--calibration`, joined by `sweep merge`, are the
//! unsharded sweep byte for byte, and parts that are not of one sweep are refused.

use std::process::{Command, Output};

use serde_json::Value;

fn sweep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gracetrace"))
        .arg("sweep")
        .args(args)
        // Tests must not depend on the OTEL_* variables of the machine.
        .env_clear()
        .output()
        .expect("the binary runs")
}

#[test]
fn bad_vary_input_exits_2_with_one_line_naming_it() {
    let cases = [
        ("batch.queue_size=1,2", "unknown knob \"batch.queue_size\""),
        (
            "tracing.sample_rate=0.5,2",
            "tracing.sample_rate = \"2\" is out of range: expected a number from 0 to 1",
        ),
        ("batch.max_queue_size=", "empty list of values"),
        (
            "batch.max_queue_size=1..500000+1",
            "the range has 500000 values; a sweep has at most 100000 cells",
        ),
        ("batch.max_queue_size=64..512", "bad range"),
        ("batch.max_queue_size=64..512x1", "bad range"),
        (
            "batch.max_queue_size=64..x2",
            "bad range: TO \"\" is not a number",
        ),
    ];
    for (vary, says) in cases {
        let out = sweep(&["--vary", vary]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vary}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{vary}: {stderr}");
        assert!(stderr.contains(vary), "{vary}: {stderr}");
        assert!(stderr.contains(says), "{vary}: {stderr}");
        assert!(!stderr.contains("panicked"), "{vary}: {stderr}");
    }
    // Lists that are each fine but whose product is too big.
    let out = sweep(&[
        "--vary",
        "batch.max_queue_size=1..1000+1",
        "--vary",
        "batch.schedule_delay_ms=1..101+1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "101000 cells (1000 values of batch.max_queue_size x 101 values of \
             batch.schedule_delay_ms); at most 100000"
        ),
        "{stderr}"
    );
    // A cell the calibration cannot follow is named before anything runs: the model with a
    // calibration file of a synthetic sweep, which measured no model.
    let dir = temp_dir("sweep-model");
    let cal = path(&dir, "cal.json");
    std::fs::write(&cal, CALIBRATION).unwrap();
    let vary = [
        "--vary",
        "workload.kind=synthetic,model",
        "--calibration",
        &cal,
    ];
    let out = sweep(&vary);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "cell workload.kind=model: workload.kind = model cannot run in virtual time \
             without the model's measured times"
        ),
        "{stderr}"
    );
}

/// Work that could not end well is refused before the calibration's real run: a sweep of
/// more runs than it can hold, or more arrivals than it can simulate in minutes, and
/// outputs that cannot be written (a missing folder, or JSON and CSV both on stdout). Each
/// is one line, exit 2, and comes at once (no "calibrating" line, no cell run).
#[test]
fn too_much_work_and_bad_outputs_are_refused_before_any_run() {
    let dir = std::env::temp_dir().join(format!("gracetrace-sweep-out-{}", std::process::id()));
    let missing = dir.join("no-such-folder").join("x.json");
    let missing = missing.to_str().expect("a UTF-8 temp path");
    let cases: [(&[&str], &str); 5] = [
        (
            &[
                "--vary",
                "batch.max_queue_size=1..2000+1",
                "--repeats",
                "1000",
            ],
            "2000 cells x 1000 repeats = 2000000 runs",
        ),
        (
            &[
                "--vary",
                "batch.max_queue_size=1..100+1",
                "--set",
                "workload.rate_per_s=50000",
                "--steady-minutes",
                "60",
            ],
            "arrivals to simulate; a sweep has at most 5e9",
        ),
        (
            &["--vary", "batch.max_queue_size=64,128", "--json", missing],
            "--json",
        ),
        (
            &["--vary", "batch.max_queue_size=64,128", "--csv", missing],
            "cannot write the report there: no folder",
        ),
        (
            &[
                "--vary",
                "batch.max_queue_size=64",
                "--json",
                "-",
                "--csv",
                "-",
            ],
            "only one output can go to standard output",
        ),
    ];
    for (args, says) in cases {
        let out = sweep(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
    }
}

#[test]
fn a_sweep_writes_every_cell_in_order_to_json_and_csv() {
    let dir = std::env::temp_dir().join(format!("gracetrace-sweep-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, csv) = (dir.join("sweep.json"), dir.join("sweep.csv"));
    let out = sweep(&[
        "--set",
        "workload.duration_s=2",
        "--set",
        "workload.rate_per_s=200",
        "--set",
        "collector.latency_ms=500",
        "--set",
        "batch.max_export_batch_size=32",
        "--vary",
        "batch.max_queue_size=64,100000",
        "--vary",
        "tracing.semantics=python,rust",
        "--repeats",
        "2",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    println!("{stdout}");
    assert!(stderr.contains("sweep: 8/8 runs (100%)"), "{stderr}");
    assert!(stdout.contains("peak queue MiB") && stdout.contains("wire size"));

    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        doc["varied"],
        serde_json::json!(["batch.max_queue_size", "tracing.semantics"])
    );
    let cells = doc["cells"].as_array().unwrap();
    let values: Vec<String> = cells.iter().map(|c| c["values"].to_string()).collect();
    assert_eq!(
        values,
        [
            r#"{"batch.max_queue_size":64,"tracing.semantics":"python"}"#,
            r#"{"batch.max_queue_size":64,"tracing.semantics":"rust"}"#,
            r#"{"batch.max_queue_size":100000,"tracing.semantics":"python"}"#,
            r#"{"batch.max_queue_size":100000,"tracing.semantics":"rust"}"#,
        ]
    );
    for (i, cell) in cells.iter().enumerate() {
        let spans = &cell["spans"];
        assert_eq!(spans["unaccounted"], 0, "{cell}");
        assert_eq!(cell["killed"], false, "{cell}");
        let dropped = spans["dropped_queue_full"].as_u64().unwrap();
        // A 64-span queue against a 500 ms backend drops; a 100,000-span one does not.
        assert_eq!(dropped > 0, i < 2, "{cell}");
        assert!(cell["peak_queue"].as_u64().unwrap() <= if i < 2 { 64 } else { 100_000 });
        assert!(
            cell["worst"]["lost"].as_u64() >= cell["lost"].as_u64(),
            "{cell}"
        );
    }
    // Python evicts the oldest, rust rejects the newest.
    assert!(cells[0]["spans"]["dropped_oldest"].as_u64() > Some(0));
    assert!(cells[1]["spans"]["dropped_newest"].as_u64() > Some(0));

    let csv = std::fs::read_to_string(&csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 5, "{csv}");
    assert!(lines[0].starts_with("batch.max_queue_size,tracing.semantics,seed,created,"));
    assert!(lines[1].starts_with("64,python,") && lines[4].starts_with("100000,rust,"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A calibration as a sweep's JSON carries it: 17-digit numbers, as a real one has, so
/// that the parts must carry it bit for bit for the merge to match.
const CALIBRATION: &str = r#"{"calibration": {"bytes_per_span": 113.58975332068312,
    "per_batch_ms": 0.784447000000076, "per_span_ms": 0.013442400000015672,
    "exports_measured": 183}}"#;

/// A small sweep of 6 cells x 2 seeds, with queues that drop and one that does not.
const SMALL: [&str; 14] = [
    "--set",
    "workload.duration_s=2",
    "--set",
    "workload.rate_per_s=200",
    "--set",
    "collector.latency_ms=500",
    "--set",
    "batch.max_export_batch_size=32",
    "--vary",
    "batch.max_queue_size=64,256,100000",
    "--vary",
    "tracing.semantics=python,rust",
    "--repeats",
    "2",
];

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("gracetrace-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn path(dir: &std::path::Path, file: &str) -> String {
    dir.join(file)
        .to_str()
        .expect("a UTF-8 temp path")
        .to_string()
}

/// Runs `sweep SMALL extra...` and asserts it succeeded; its stdout.
fn small_sweep(extra: &[&str]) -> String {
    let args: Vec<&str> = SMALL.iter().copied().chain(extra.iter().copied()).collect();
    let out = sweep(&args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{extra:?}: {stderr}");
    assert!(!stderr.contains("calibrating"), "{stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn three_shards_merged_are_byte_for_byte_the_unsharded_sweep() {
    let dir = temp_dir("sweep-shards");
    let cal = path(&dir, "cal.json");
    std::fs::write(&cal, CALIBRATION).unwrap();
    let (json, csv) = (path(&dir, "sweep.json"), path(&dir, "sweep.csv"));
    let table = small_sweep(&["--calibration", &cal, "--json", &json, "--csv", &csv]);
    let parts: Vec<String> = (0..3)
        .map(|k| path(&dir, &format!("part-{k}.json")))
        .collect();
    for (k, part) in parts.iter().enumerate() {
        let shard = format!("{k}/3");
        let stdout = small_sweep(&["--calibration", &cal, "--shard", &shard, "--json", part]);
        assert!(stdout.contains(&format!("shard {k}/3: 2 of the sweep's 6 cells")));
    }
    let (merged_json, merged_csv) = (path(&dir, "merged.json"), path(&dir, "merged.csv"));
    // In any order.
    let out = sweep(&[
        "merge",
        &parts[2],
        &parts[0],
        &parts[1],
        "--json",
        &merged_json,
        "--csv",
        &merged_csv,
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let read = |p: &str| std::fs::read(p).unwrap();
    assert!(read(&json) == read(&merged_json), "the merged JSON differs");
    assert!(read(&csv) == read(&merged_csv), "the merged CSV differs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), table);
    let doc: Value = serde_json::from_slice(&read(&merged_json)).unwrap();
    assert_eq!(doc["cells"].as_array().map(Vec::len), Some(6));
    assert_eq!(doc["calibration"]["exports_measured"], 183);
    // A part is a calibration file too.
    let again = path(&dir, "again.json");
    small_sweep(&["--calibration", &parts[1], "--json", &again]);
    assert!(read(&json) == read(&again), "a part's calibration differs");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts that `sweep ARGS` exits 2 with one line that says `says`, and ran nothing.
fn refused(args: &[&str], says: &str) {
    let out = sweep(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(says), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}: nothing ran");
}

#[test]
fn bad_shards_exit_2_with_one_line_naming_the_value() {
    // Never written: every case is refused first.
    let out = path(&std::env::temp_dir(), "gracetrace-never-written.json");
    for (shard, says) in [
        ("3/2", "--shard \"3/2\": K = 3 is not below N = 2"),
        ("1/0", "--shard \"1/0\": N = 0"),
        ("x", "--shard \"x\": expected K/N"),
        ("-1/2", "--shard \"-1/2\": expected K/N"),
    ] {
        let vary = ["--vary", "batch.max_queue_size=64"];
        refused(
            &[&vary[..], &["--shard", shard, "--json", &out]].concat(),
            says,
        );
    }
    refused(
        &["--vary", "batch.max_queue_size=64", "--shard", "0/2"],
        "--shard 0/2 needs --json FILE",
    );
}

/// Parts that do not make one sweep: exit 2, one line naming the file or the shard.
#[test]
fn parts_of_other_sweeps_and_missing_shards_are_refused_by_merge() {
    let dir = temp_dir("sweep-bad-parts");
    let (cal, other_cal) = (path(&dir, "cal.json"), path(&dir, "other-cal.json"));
    std::fs::write(&cal, CALIBRATION).unwrap();
    std::fs::write(&other_cal, CALIBRATION.replace("183", "184")).unwrap();
    let part = |name: &str, shard: &str, extra: &[&str]| {
        let file = path(&dir, name);
        small_sweep(&[&["--shard", shard, "--json", &file], extra].concat());
        file
    };
    let p0 = part("p0.json", "0/2", &["--calibration", &cal]);
    let p1 = part("p1.json", "1/2", &["--calibration", &cal]);
    let faster = part(
        "faster.json",
        "1/2",
        &["--calibration", &cal, "--set", "workload.rate_per_s=300"],
    );
    let recal = part("recal.json", "1/2", &["--calibration", &other_cal]);
    let of3 = part("of3.json", "1/3", &["--calibration", &cal]);
    let cases: [(Vec<&str>, String); 7] = [
        (
            vec![&p0, &faster],
            format!("{faster} is a part of a different sweep than {p0}"),
        ),
        (
            vec![&p0, &recal],
            format!("{recal} and {p0} were calibrated apart"),
        ),
        (
            vec![&p0, &of3],
            format!("{of3} is shard 1/3, but {p0} is shard 0/2"),
        ),
        (vec![&p0], "shard 1/2 is missing".into()),
        (
            vec![&p0, &p1, &p0],
            format!("shard 0/2 is given twice: {p0} and {p0}"),
        ),
        (vec![&p0, &cal], format!("{cal} is not a sweep part")),
        (
            vec![&p0, "Cargo.toml"],
            "Cargo.toml is not a sweep part: it is not JSON".into(),
        ),
    ];
    for (files, says) in cases {
        refused(&[vec!["merge"], files].concat(), &says);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 22: a scenario without `shutdown.at_s` is swept in its steady state, as the
/// window's live runner plays it (`burst-overflow`'s 4096 queue drops every second there,
/// where a sweep of its 2.5 s and a SIGTERM dropped nothing), and the header says so; with
/// a SIGTERM the sweep plays the shutdown as before.
#[test]
fn a_scenario_without_a_shutdown_is_swept_in_its_steady_state() {
    let dir = temp_dir("sweep-steady");
    let cal = path(&dir, "cal.json");
    std::fs::write(&cal, CALIBRATION).unwrap();
    let scenario = crate::common::scenario_path("burst-overflow");
    let scenario = scenario.to_str().expect("a UTF-8 path");
    let base = [
        "--scenario",
        scenario,
        "--vary",
        "batch.max_queue_size=4096",
        "--calibration",
        &cal,
        "--json",
        "-",
    ];
    let out = sweep(&[&base[..], &["--steady-minutes", "1"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("; steady state: 1 min after 30 s warm-up, no SIGTERM"),
        "{stderr}"
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let steady = &json["cells"][0]["steady"];
    assert_eq!(steady["measured_s"], 60.0);
    let dropped = steady["dropped_queue_full"].as_u64().expect("a count");
    assert!(dropped > 0, "{steady}");
    assert_eq!(steady["dropped_per_s"], dropped as f64 / 60.0);
    assert_eq!(json["cells"][0]["spans"]["unaccounted"], 0);
    let out = sweep(&[&base[..], &["--set", "shutdown.at_s=2.5"]].concat());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("steady state"), "{stderr}");
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert!(json["cells"][0]["steady"].is_null());
}
