//! The reference: `oha` (crates.io) against the same server at the same rate, with the
//! probe's connection behaviour (a fresh connection per request) and open loop
//! (`--latency-correction`: latency counts from when the request was due), its JSON
//! output read back for p50 and p99.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::server::Pinning;

/// How many requests oha may have out at once. Its open loop hands each due request to
/// an idle worker, so this must never be what limits it: 256 covers a 50 ms stall of the
/// server at 5,000 requests/s.
const WORKERS: &str = "256";

/// oha's figures for one run.
pub struct OhaFigures {
    pub answered: u64,
    pub failed: u64,
    pub p50: Duration,
    pub p99: Duration,
}

/// `oha` on the PATH, else in cargo's own bin folder (where `cargo install` puts it), as
/// `GRACETRACE_OHA` names it if set.
pub fn find() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("GRACETRACE_OHA") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("oha"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("oha"));
    on_path.chain(cargo_home).find(|path| path.is_file())
}

/// Runs oha for `duration` at `rate` against `port`; an error names what failed.
pub fn run(
    oha: &PathBuf,
    pinning: &Pinning,
    port: u16,
    rate: f64,
    duration: Duration,
) -> Result<OhaFigures, String> {
    let url = format!("http://127.0.0.1:{port}/");
    let seconds = format!("{}ms", duration.as_millis());
    let rate_text = rate.to_string();
    // On the generators' CPUs, as the probe: `taskset -c CPUS oha ...`.
    let mut command = match &pinning.generators {
        Some(cpus) => {
            let mut taskset = Command::new("taskset");
            taskset.args(["-c", cpus]).arg(oha);
            taskset
        }
        None => Command::new(oha),
    };
    let output = command
        .args([
            &url,
            "-z",
            &seconds,
            "-q",
            &rate_text,
            "--latency-correction",
            "--disable-keepalive",
            // `--disable-keepalive` also adds `Connection: close` (oha 1.16 `lib.rs`
            // l. 545-547), and a server told so closes the connection itself after the
            // response: its FIN first, its socket in TIME_WAIT, a few tenths of a
            // millisecond of its core per request that the probe's requests never cost
            // it (tcpdump on lo at 5,000/s: the server's request-to-response time p50
            // 0.33 ms for oha's requests, 0.15 to 0.17 ms for the probe's). The probe
            // sends HTTP/1.1's default and closes the connection itself once answered,
            // so oha is told the same; its own headers come after this one and replace it
            // (l. 549-551).
            "-H",
            "Connection: keep-alive",
            "-c",
            WORKERS,
            // Requests still out at the end are waited for, as the probe waits for them.
            "-w",
            "--no-tui",
            "--output-format",
            "json",
        ])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", oha.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} exited with {}: {}",
            oha.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    parse(&output.stdout).map_err(|e| format!("{}'s JSON output: {e}", oha.display()))
}

/// p50 and p99 from `latencyPercentiles` (seconds), counts from the status and error
/// distributions.
fn parse(stdout: &[u8]) -> Result<OhaFigures, String> {
    let json: serde_json::Value = serde_json::from_slice(stdout).map_err(|e| e.to_string())?;
    let seconds = |key: &str| {
        json["latencyPercentiles"][key]
            .as_f64()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .ok_or_else(|| format!("no latencyPercentiles.{key}"))
    };
    let sum = |key: &str, only_ok: bool| -> u64 {
        json[key].as_object().map_or(0, |counts| {
            counts
                .iter()
                .filter(|(name, _)| !only_ok || name.starts_with('2'))
                .filter_map(|(_, n)| n.as_u64())
                .sum()
        })
    };
    let answered = sum("statusCodeDistribution", true);
    let other_status = sum("statusCodeDistribution", false) - answered;
    Ok(OhaFigures {
        answered,
        failed: other_status + sum("errorDistribution", false),
        p50: seconds("p50")?,
        p99: seconds("p99")?,
    })
}
