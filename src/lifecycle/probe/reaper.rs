//! Nothing the app started outlives the probe: not a grandchild that left the app's process
//! group with `setsid()`, and not the app's tree when the probe itself is SIGKILLed.
//!
//! The app's process group catches what stays in it; what leaves it is found by a mark in
//! the environment: every process the app starts inherits `GRACETRACE_PROBE_MARK=<id>`
//! unless it clears its environment on purpose. At the end of a run the probe SIGKILLs
//! every process carrying its mark ([`Mark::kill_marked`]); and a guardian (a shell loop,
//! [`Guardian`]) waits for the probe's own death and does the same, so a SIGKILLed probe
//! still takes the app with it.
//!
//! Why not the alternatives: `PR_SET_CHILD_SUBREAPER` would make orphans the probe's
//! children, but the probe also runs inside the window's process (and the test harness's),
//! whose other children are not the app's, so "every child" is not "the app's tree"; a
//! cgroup of its own needs a writable cgroup tree, which a desktop session or a container
//! often does not give; `PR_SET_PDEATHSIG` reaches only the app's first process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The variable that marks the app's processes.
pub const MARK_VAR: &str = "GRACETRACE_PROBE_MARK";
/// Rounds of [`Mark::kill_marked`]: a process may fork while its siblings are killed, so
/// the scan repeats until a round finds none (bounded, so it always ends).
const ROUNDS: usize = 20;

/// One run's mark: unique to this process, this run and this moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark(String);

impl Mark {
    pub fn new() -> Mark {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let run = RUNS.fetch_add(1, Relaxed);
        Mark(format!("{}-{run}-{nanos}", std::process::id()))
    }

    /// The app's environment entry.
    pub fn var(&self) -> (&'static str, &str) {
        (MARK_VAR, &self.0)
    }

    /// SIGKILLs every process but this one whose environment carries the mark, until a
    /// scan finds none; returns how many were killed.
    pub fn kill_marked(&self) -> usize {
        let entry = format!("{MARK_VAR}={}", self.0);
        let mut killed = 0;
        for _ in 0..ROUNDS {
            let marked = marked_pids(entry.as_bytes());
            if marked.is_empty() {
                break;
            }
            for pid in &marked {
                sigkill(*pid);
            }
            killed += marked.len();
            // Time for the kernel to take them down before the next scan.
            std::thread::sleep(Duration::from_millis(5));
        }
        killed
    }
}

impl Default for Mark {
    fn default() -> Self {
        Mark::new()
    }
}

/// The processes (other than this one) whose environment holds `entry` exactly. A process
/// whose environment cannot be read (another user's, or gone) is not ours to find; a zombie
/// has an empty environment, and is its parent's to reap.
fn marked_pids(entry: &[u8]) -> Vec<libc::pid_t> {
    let me = std::process::id();
    let Ok(proc_dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    proc_dir
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            let path = Path::new("/proc").join(pid.to_string()).join("environ");
            std::fs::read(path).is_ok_and(|env| env.split(|&b| b == 0).any(|var| var == entry))
        })
        .filter_map(|pid| libc::pid_t::try_from(pid).ok())
        .collect()
}

fn sigkill(pid: libc::pid_t) {
    // SAFETY: kill(2) takes two integers and touches no memory of ours. The pid was read
    // from /proc a moment ago with our mark in its environment; a pid recycled in between
    // would have to be a new process of ours, started in those microseconds.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A shell loop that outlives a SIGKILLed probe by a moment: it polls the probe's pid every
/// 200 ms and, once the probe is gone, SIGKILLs every process carrying the mark. A normal
/// end of the run stops it ([`Drop`]). It is not marked itself, and lives in a process group
/// of its own, so neither the app's group kill nor the mark's scan reaches it.
pub struct Guardian(Child);

/// The guardian's script: `$1` is the probe's pid, `$2` the mark's environment entry.
const GUARDIAN: &str = r#"
while kill -0 "$1" 2>/dev/null; do sleep 0.2; done
for round in 1 2 3 4 5; do
  for env in /proc/[0-9]*/environ; do
    if tr '\0' '\n' < "$env" 2>/dev/null | grep -qxF "$2"; then
      pid=${env#/proc/}; kill -9 "${pid%/environ}" 2>/dev/null
    fi
  done
  sleep 0.05
done
"#;

impl Guardian {
    /// Starts the guardian of `mark` for this process.
    pub fn start(mark: &Mark) -> std::io::Result<Guardian> {
        use std::os::unix::process::CommandExt as _;
        let entry = format!("{MARK_VAR}={}", mark.0);
        Command::new("sh")
            .args(["-c", GUARDIAN, "gracetrace-probe-guardian"])
            .arg(std::process::id().to_string())
            .arg(entry)
            .env_remove(MARK_VAR)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Guardian)
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process carrying the mark, in a session of its own, is found and killed; one
    /// without it is left alone.
    #[test]
    fn marked_processes_are_killed_and_others_left() {
        let mark = Mark::new();
        let (var, value) = mark.var();
        let mut marked = Command::new("setsid")
            .args(["sleep", "30"])
            .env(var, value)
            .spawn()
            .expect("setsid sleep");
        let mut other = Command::new("sleep").arg("30").spawn().expect("sleep");
        // setsid may fork: wait until the marked sleep is there.
        let entry = format!("{MARK_VAR}={value}");
        for _ in 0..500 {
            if !marked_pids(entry.as_bytes()).is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(mark.kill_marked() >= 1);
        assert!(marked_pids(entry.as_bytes()).is_empty());
        assert!(
            other.try_wait().expect("try_wait").is_none(),
            "unmarked left alone"
        );
        let _ = other.kill();
        let _ = other.wait();
        let _ = marked.wait();
    }
}
