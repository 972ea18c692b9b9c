//! `gracetrace sweep` as a user runs it: bad input is refused with exit code 2 and one
//! line naming it, and a sweep writes a table, JSON and CSV whose cells are the product
//! of the `--vary` lists, in order, each accounted for.

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
    // A cell the simulator cannot follow is named before anything runs.
    let out = sweep(&["--vary", "tracing.semantics=python,sdk"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("cell tracing.semantics=sdk: tracing.semantics = sdk cannot run"),
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
                "--set",
                "workload.duration_s=3600",
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
