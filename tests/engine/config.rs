//! Configuration: layering (environment < scenario file < --set) and errors that name the
//! input, the value and the allowed range, from the library and from the real binary.

use std::collections::HashMap;
use std::process::Command;

use gracetrace::config::{Semantics, Settings, scenario};

fn load(vars: &[(&str, &str)], overrides: &[&str]) -> Result<Settings, String> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    Settings::load(&|var| vars.get(var).cloned(), None, &overrides).map_err(|e| e.to_string())
}

#[test]
fn defaults_are_the_seeds() {
    let s = load(&[], &[]).unwrap();
    assert!(s.tracing.enabled);
    assert_eq!(s.tracing.sample_rate, 1.0);
    assert_eq!(s.tracing.semantics, Semantics::Python);
    assert_eq!(
        (s.batch.max_queue_size, s.batch.max_export_batch_size),
        (2048, 512)
    );
    assert_eq!(
        (s.batch.schedule_delay_ms, s.batch.export_timeout_ms),
        (5000, 30_000)
    );
    assert_eq!(s.exporter.timeout_ms, 10_000);
}

#[test]
fn environment_variables_are_read_as_the_seed_reads_them() {
    let s = load(
        &[
            ("OTEL_SAMPLE_RATE", "0.1"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4096"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"),
            ("OTEL_BSP_SCHEDULE_DELAY", "1000"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_SERVICE_NAME", "svc"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.tracing.sample_rate, 0.1);
    assert_eq!(s.batch.max_queue_size, 4096);
    assert_eq!(s.batch.max_export_batch_size, 1024);
    assert_eq!(s.batch.schedule_delay_ms, 1000);
    assert_eq!(s.batch.export_timeout_ms, 2000);
    assert_eq!(
        s.exporter.endpoint.as_deref(),
        Some("http://127.0.0.1:4318/v1/traces")
    );
    assert_eq!(s.exporter.timeout_ms, 3000);
    assert_eq!(s.tracing.service_name, "svc");

    // The signal-specific endpoint is used as is and wins over the base.
    let s = load(
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:1"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:2/custom"),
        ],
        &[],
    )
    .unwrap();
    assert_eq!(s.exporter.endpoint.as_deref(), Some("http://b:2/custom"));
}

#[test]
fn tracing_switches_and_sampler_precedence() {
    assert!(
        !load(&[("ENABLE_TRACING", "false")], &[])
            .unwrap()
            .tracing
            .enabled
    );
    assert!(
        !load(&[("ENABLE_TRACING", "FALSE")], &[])
            .unwrap()
            .tracing
            .enabled
    );
    assert!(
        !load(&[("OTEL_SDK_DISABLED", "true")], &[])
            .unwrap()
            .tracing
            .enabled
    );
    // Disabled wins over enabled.
    let s = load(
        &[("ENABLE_TRACING", "true"), ("OTEL_SDK_DISABLED", "true")],
        &[],
    )
    .unwrap();
    assert!(!s.tracing.enabled);

    let sampler = [
        ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
    ];
    assert_eq!(load(&sampler, &[]).unwrap().tracing.sample_rate, 0.25);
    assert_eq!(
        load(&[("OTEL_TRACES_SAMPLER", "always_off")], &[])
            .unwrap()
            .tracing
            .sample_rate,
        0.0
    );
    // The seed passes an explicit sampler built from OTEL_SAMPLE_RATE: it wins.
    let mut both = sampler.to_vec();
    both.push(("OTEL_SAMPLE_RATE", "0.5"));
    assert_eq!(load(&both, &[]).unwrap().tracing.sample_rate, 0.5);
}

#[test]
fn bad_environment_values_name_variable_value_and_range() {
    let cases = [
        (
            ("OTEL_SAMPLE_RATE", "abc"),
            "OTEL_SAMPLE_RATE=\"abc\" is invalid (tracing.sample_rate): expected a number from 0 to 1",
        ),
        (
            ("OTEL_SAMPLE_RATE", "1.5"),
            "OTEL_SAMPLE_RATE=\"1.5\" is invalid (tracing.sample_rate): expected a number from 0 to 1",
        ),
        (
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            "OTEL_BSP_MAX_QUEUE_SIZE=\"0\" is invalid (batch.max_queue_size): expected a whole number from 1 to 10000000",
        ),
        (
            ("ENABLE_TRACING", "yes"),
            "ENABLE_TRACING=\"yes\" is invalid (tracing.enabled): expected true or false",
        ),
        (
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            "OTEL_TRACES_SAMPLER=\"sometimes\" is invalid (tracing.sample_rate): expected always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio",
        ),
        (
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https:///v1/traces"),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\"https:///v1/traces\" is invalid (exporter.endpoint): expected an http:// or https:// URL with a host and a port from 1 to 65535, ending in /v1/traces, or \"embedded\"",
        ),
    ];
    for ((var, value), expected) in cases {
        assert_eq!(load(&[(var, value)], &[]).unwrap_err(), expected);
    }
    let err = load(&[("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4096")], &[]).unwrap_err();
    assert!(
        err.contains("batch.max_export_batch_size")
            && err.contains("4096")
            && err.contains("must not exceed batch.max_queue_size (2048)"),
        "{err}"
    );
}

#[test]
fn layers_override_in_order() {
    let mut s = Settings::default();
    scenario::apply_str(&mut s, "[tracing]\nsample_rate = 0.3\n", "f.toml").unwrap();
    assert_eq!(s.tracing.sample_rate, 0.3);
    // --set beats the file, which beats the environment.
    let path = crate::common::scenario_path("seed-defaults");
    let s = Settings::load(
        &|v| (v == "OTEL_BSP_SCHEDULE_DELAY").then(|| "777".to_string()),
        Some(&path),
        &["batch.schedule_delay_ms=1234".into()],
    )
    .unwrap();
    assert_eq!(s.batch.schedule_delay_ms, 1234);
    let s = Settings::load(
        &|v| (v == "OTEL_SAMPLE_RATE").then(|| "0.2".to_string()),
        Some(&path),
        &[],
    )
    .unwrap();
    assert_eq!(
        s.tracing.sample_rate, 1.0,
        "the file sets 1.0 and wins over the environment"
    );

    let err = load(&[], &["batch.max_queue_size"]).unwrap_err();
    assert_eq!(
        err,
        "--set: \"batch.max_queue_size\" is not of the form key=value"
    );
    let err = load(&[], &["batch.nope=1"]).unwrap_err();
    assert!(err.starts_with("--set: batch.nope = \"1\" is invalid: unknown key; known keys are: name, tracing.enabled"), "{err}");
}

#[test]
fn every_shipped_scenario_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/scenarios");
    let mut count = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        Settings::load(&crate::common::no_env, Some(&path), &[]).unwrap_or_else(|e| panic!("{e}"));
        count += 1;
    }
    assert!(count >= 5);
}

/// The real binary: bad input exits 2 with one line naming it, and never panics.
#[test]
fn the_binary_rejects_bad_input_with_exit_code_2() {
    let bin = env!("CARGO_BIN_EXE_gracetrace");
    let dir = std::env::temp_dir().join(format!("gracetrace-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let malformed = dir.join("malformed.toml");
    std::fs::write(&malformed, "name = \"x\"\n[batch\nmax_queue_size = 1\n").unwrap();
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "[batch]\nmax_queue_size = 100\nqueue_size = 5\n").unwrap();

    // (environment, arguments after `run`, what stderr must say)
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<String>, String);
    let cases: Vec<Case> = vec![
        (
            vec![("OTEL_SAMPLE_RATE", "abc")],
            vec![],
            "OTEL_SAMPLE_RATE=\"abc\"".into(),
        ),
        (
            vec![],
            vec!["--scenario".into(), malformed.display().to_string()],
            format!("{}:2: not valid TOML", malformed.display()),
        ),
        (
            vec![],
            vec!["--scenario".into(), unknown.display().to_string()],
            format!(
                "{}:3: batch.queue_size = \"5\" is invalid: unknown key",
                unknown.display()
            ),
        ),
        (
            vec![],
            vec![
                "--scenario".into(),
                dir.join("missing.toml").display().to_string(),
            ],
            "cannot read the scenario file".into(),
        ),
        (
            vec![],
            vec!["--set".into(), "tracing.sample_rate=2".into()],
            "--set: tracing.sample_rate = \"2\" is invalid: expected a number from 0 to 1".into(),
        ),
    ];
    for (vars, args, expected) in cases {
        let output = Command::new(bin)
            .arg("run")
            .args(&args)
            .env_clear()
            .envs(vars.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in {stderr:?}"
        );
        assert!(!stderr.contains("panicked"));
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `gracetrace run ARGS` with only `vars` in its environment; returns the exit code
/// and stderr.
fn run_binary(vars: &[(&str, &std::ffi::OsStr)], args: &[String]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_gracetrace"))
        .arg("run")
        .args(args)
        .env_clear()
        .envs(vars.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

/// Issue 11's hostile inputs: each exits 2 before anything runs, with one line naming the
/// input and the value.
#[test]
fn hostile_inputs_exit_2_naming_the_input() {
    use std::os::unix::ffi::OsStrExt;
    let dir = std::env::temp_dir().join(format!("gracetrace-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let string_number = file("string.toml", "[batch]\nmax_queue_size = \"64\"\n");
    let empty_section = file("section.toml", "name = \"x\"\n[foo]\n");
    let not_utf8 = std::ffi::OsStr::from_bytes(b"20\xff48");
    let os = |s: &'static str| std::ffi::OsStr::new(s);
    let no_dir = dir.join("no-such-dir").join("r.json").display().to_string();
    type Case<'a> = (Vec<(&'a str, &'a std::ffi::OsStr)>, Vec<String>, String);
    let cases: Vec<Case> = vec![
        (
            vec![],
            vec!["--scenario".into(), string_number.clone()],
            format!("{string_number}:2: batch.max_queue_size = \"64\" is invalid: expected a whole number from 1 to 10000000, not a string"),
        ),
        (
            vec![],
            vec!["--scenario".into(), empty_section.clone()],
            format!("{empty_section}:2: [foo] is not a section"),
        ),
        (
            vec![("OTEL_BSP_MAX_QUEUE_SIZE", not_utf8)],
            vec![],
            "OTEL_BSP_MAX_QUEUE_SIZE=\"20\u{fffd}48\" is invalid (batch.max_queue_size): the value is not valid UTF-8".into(),
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", os("http://"))],
            vec![],
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\"http://\" is invalid (exporter.endpoint)".into(),
        ),
        (
            vec![("OTEL_EXPORTER_OTLP_ENDPOINT", os("http://127.0.0.1:99999"))],
            vec![],
            "OTEL_EXPORTER_OTLP_ENDPOINT=\"http://127.0.0.1:99999/v1/traces\" is invalid (exporter.endpoint)".into(),
        ),
        (
            vec![],
            vec!["--json".into(), no_dir.clone(), "--set".into(), "workload.duration_s=60".into()],
            format!("--json {no_dir}: cannot write the report there: no folder"),
        ),
    ];
    for (vars, args, expected) in cases {
        let (code, stderr) = run_binary(&vars, &args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(&expected),
            "expected {expected:?} in {stderr:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// Endpoints: a host and a port in range, or refused where they were written.
#[test]
fn endpoints_need_a_host_and_a_valid_port() {
    for good in [
        "http://127.0.0.1:4318/v1/traces",
        "http://collector/v1/traces",
        "http://[::1]:1/v1/traces",
        "embedded",
    ] {
        assert!(
            load(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", good)], &[]).is_ok(),
            "{good}"
        );
    }
    for bad in [
        "http://",
        "http://:4318/v1/traces",
        "http://h:0/v1/traces",
        "http://h:65536/v1/traces",
        "http://h:x/v1/traces",
        "ftp://h/v1/traces",
        "http://[::1/v1/traces",
    ] {
        let err = load(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", bad)], &[]).unwrap_err();
        assert!(
            err.starts_with(&format!("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=\"{bad}\"")),
            "{err}"
        );
    }
}

/// A hex integer in a scenario file means what TOML says, through the whole load.
#[test]
fn hex_queue_size_is_2048() {
    let dir = std::env::temp_dir().join(format!("gracetrace-hex-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("hex.toml");
    std::fs::write(&path, "[batch]\nmax_queue_size = 0x800\n").unwrap();
    let s = Settings::load(&crate::common::no_env, Some(&path), &[]).unwrap();
    assert_eq!(s.batch.max_queue_size, 2048);
    std::fs::remove_dir_all(&dir).ok();
    // The same literals on the command line, as TOML reads them.
    for (raw, expected) in [("0x800", 2048), ("0o4000", 2048), ("0b100000000000", 2048)] {
        let set = vec![format!("batch.max_queue_size={raw}")];
        let s = Settings::load(&crate::common::no_env, None, &set).unwrap();
        assert_eq!(s.batch.max_queue_size, expected, "{raw}");
    }
    for bad in ["0x-800", "0x", "0xg"] {
        let set = vec![format!("batch.max_queue_size={bad}")];
        assert!(
            Settings::load(&crate::common::no_env, None, &set).is_err(),
            "{bad}"
        );
    }
}

/// Inputs that would make a run that never ends, or never starts, are refused at once
/// and named: bursts closer than a millisecond, a schedule of more arrivals than a run
/// makes, and a scenario path that is not a regular file (a FIFO with no writer blocked
/// forever).
#[test]
fn inputs_that_would_never_end_are_refused() {
    let load = |set: &[&str]| {
        let set: Vec<String> = set.iter().map(|s| s.to_string()).collect();
        Settings::load(&crate::common::no_env, None, &set)
    };
    for tiny in ["1e-10", "1e-300", "0.0009"] {
        let err = load(&[
            &format!("workload.burst_every_s={tiny}"),
            "workload.burst_size=1",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("workload.burst_every_s"), "{err}");
        assert!(err.contains("0 (no bursts) or from 0.001"), "{err}");
    }
    assert!(load(&["workload.burst_every_s=0.001", "workload.burst_size=1"]).is_ok());
    let err = load(&[
        "workload.burst_every_s=0.001",
        "workload.burst_size=1000000",
        "workload.duration_s=3600",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("one run makes at most 200000000"), "{err}");
    let dir = std::env::temp_dir().join(format!("gracetrace-fifo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join("scenario.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let err = Settings::load(&crate::common::no_env, Some(&fifo), &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}
