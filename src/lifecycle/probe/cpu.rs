//! The app's CPU time, as the kernel counts it: what tracing costs a real app shows up
//! here first (the SDK's span bookkeeping on request threads, the export thread's protobuf
//! encoding). Two readings: the whole process group's time at SIGTERM, from `/proc`
//! (what serving cost, before the shutdown's flush), and the app's total when it is
//! reaped, from `wait4(2)`'s `rusage` (its own time and that of the children it waited for).

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

/// The CPU time of every process in the group `pgid` (user + system, with their waited-for
/// children's), milliseconds, summed from `/proc/PID/stat`; `None` when `/proc` cannot be
/// read (not Linux). A process that ends while it is read is skipped.
pub fn group_cpu_ms(pgid: u32) -> Option<f64> {
    let ticks_per_s = clock_ticks_per_s()?;
    let mut ticks = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        let Some(name) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{name}/stat")) else {
            continue;
        };
        if let Some((group, cpu)) = group_and_ticks(&stat)
            && group == pgid
        {
            ticks = ticks.saturating_add(cpu);
        }
    }
    Some(ticks as f64 * 1000.0 / ticks_per_s)
}

/// From one `/proc/PID/stat` line: the process group (field 5) and the sum of utime,
/// stime, cutime and cstime (fields 14 to 17), in clock ticks (proc(5)). The command name
/// (field 2) is in parentheses and may hold spaces or parentheses itself, so fields count
/// from the last `)`.
fn group_and_ticks(stat: &str) -> Option<(u32, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): field N is fields[N - 3].
    let group = fields.get(2)?.parse().ok()?;
    let cpu = fields
        .get(11..15)?
        .iter()
        .map(|f| f.parse::<u64>().ok())
        .sum::<Option<u64>>()?;
    Some((group, cpu))
}

fn clock_ticks_per_s() -> Option<f64> {
    // SAFETY: sysconf reads a constant of the system; it touches no memory of ours.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (ticks > 0).then_some(ticks as f64)
}

/// Reaps the child `pid` if it has ended, without waiting: its status and its CPU time
/// (user + system of the process and of the children it waited for, milliseconds).
/// `Ok(None)` while it runs. Once this returned `Some`, the child is reaped: std's
/// `Child::wait` must not be called for it.
pub fn try_reap(pid: u32) -> std::io::Result<Option<(ExitStatus, f64)>> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: all-zero is a valid `rusage` (plain integers and timevals).
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 writes only into `status` and `usage`, both ours and alive for the call;
    // `pid` is our own child, which nothing else reaps.
    #[allow(unsafe_code)]
    let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match reaped {
        0 => Ok(None),
        r if r < 0 => Err(std::io::Error::last_os_error()),
        _ => {
            let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
            let cpu = ms(usage.ru_utime) + ms(usage.ru_stime);
            Ok(Some((ExitStatus::from_raw(status), cpu)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// proc(5)'s field order, with a command name that holds `) (` and spaces.
    #[test]
    fn stat_fields_count_from_the_last_parenthesis() {
        let stat = "4242 (my (odd) app) S 1 4240 4240 0 -1 4194560 100 0 0 0 \
                    70 30 5 2 20 0 3 0 123 456 789";
        assert_eq!(group_and_ticks(stat), Some((4240, 107)));
        assert_eq!(group_and_ticks("garbage"), None);
    }

    /// A child that burns CPU: its group's time grows, and the reaped total covers it.
    #[test]
    fn a_busy_child_is_counted() {
        use std::os::unix::process::CommandExt as _;
        // Reaped by `try_reap` below, which std's `Child` cannot see.
        #[allow(clippy::zombie_processes)]
        let child = std::process::Command::new("sh")
            .args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])
            .process_group(0)
            .spawn()
            .expect("sh");
        let pid = child.id();
        let mut during = None;
        let reaped = loop {
            if let Some(done) = try_reap(pid).expect("wait4") {
                break done;
            }
            during = group_cpu_ms(pid).or(during);
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert!(reaped.0.success());
        assert!(reaped.1 > 0.0, "{reaped:?}");
        assert!(during.is_some());
    }
}
