//! CPU time from /proc, to say what each generator spent per request: the machine is
//! shared, so how late requests were depends on what else ran, but the CPU a generator
//! needed for a request does not, much.

use std::time::Duration;

/// The kernel's clock ticks per second for /proc's times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// CPU times of this process so far.
#[derive(Clone, Copy, Default)]
pub struct Times {
    /// Every thread of this process, ended ones included.
    pub own: Duration,
    /// Children that were waited for (oha; the server's process is waited for only
    /// after its rate's runs).
    pub children: Duration,
}

/// Reads /proc/self/stat; zero where it cannot be read.
pub fn now() -> Times {
    let fields = stat_fields("/proc/self/stat");
    let ticks = |a: usize, b: usize| seconds(fields.get(a), fields.get(b));
    // After "pid (comm)", field 3 (state) is index 0: utime 14, stime 15, cutime 16,
    // cstime 17 (proc(5)).
    Times {
        own: ticks(11, 12),
        children: ticks(13, 14),
    }
}

fn stat_fields(path: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // The command name may hold spaces and parentheses; the fields follow the last ')'.
    let rest = text.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(str::to_owned).collect()
}

fn seconds(a: Option<&String>, b: Option<&String>) -> Duration {
    let ticks = |t: Option<&String>| t.and_then(|t| t.parse::<f64>().ok()).unwrap_or(0.0);
    Duration::from_secs_f64((ticks(a) + ticks(b)) / TICKS_PER_S)
}
