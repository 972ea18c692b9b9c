//! `gracetrace probe -- CMD`: the user's own app under the platform's shutdown. The app is
//! started with the OTLP variables pointing at an embedded collector (with any fault from
//! the settings; at its gRPC listener when the app's protocol is gRPC), gets a real
//! SIGTERM when asked and a real SIGKILL at the end of the grace period, and everything is
//! reported from the collector's side, as a backend sees it.
//!
//! This file is the run (environment, signals, the watch loop); `reaper` makes sure nothing
//! the app started outlives it; `target` (where `--url` sends its load, checked), `load` (readiness, then
//! the scenario's arrivals sent open loop, each with a `traceparent`), `follow` (each
//! request joined with what arrived of its trace), `live_load` (the `load` section so far,
//! for a watcher that draws it), `fail_if` (`--fail-if`). The command
//! line, its summary and its report file are `cli::probe`'s.

pub mod fail_if;
pub mod follow;
pub mod live_load;
pub mod load;
pub mod target;

use std::os::unix::process::{CommandExt as _, ExitStatusExt as _};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

mod cpu;
mod reaper;

use crate::collector::{Collector, CollectorConfig, CollectorError, CollectorStats, FORWARD_DRAIN};
use crate::config::{Settings, StopSignal, knobs};
use crate::record::load::{LoadSection, TraceSection};
use crate::record::probe::{BeforeSigterm, ProbeReport, ProbeSample, ProbeSection, Sdk};
use live_load::LiveLoad;
use load::{Load, LoadError, LoadPlan};
use reaper::{Guardian, Mark};

/// How often the collector's counts are sampled into the timeline.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How often the child is polled: the precision of the measured exit and signal times.
const POLL: Duration = Duration::from_millis(1);
/// After the app ended, how long requests still held by the collector (a latency fault)
/// may take to be decided or abandoned before the counts are read.
const SETTLE: Duration = Duration::from_secs(5);
/// Timeline samples kept: an hour at 10 Hz; later ones are dropped (the totals stay exact).
const MAX_SAMPLES: usize = 36_000;

/// The knobs whose values reach the app as environment variables: the seed's own
/// switches and the batch processor's settings, so the sliders reach the real app too.
pub const APP_KNOBS: [&str; 6] = [
    "tracing.enabled",
    "tracing.sample_rate",
    "batch.max_queue_size",
    "batch.max_export_batch_size",
    "batch.schedule_delay_ms",
    "batch.export_timeout_ms",
];

/// The OTLP protocols an app may ask for (`OTEL_EXPORTER_OTLP_PROTOCOL`), every one of
/// which the embedded collector takes; the first is what the probe sets when the app
/// sets none.
const PROTOCOLS: [&str; 3] = ["http/protobuf", "http/json", "grpc"];

/// The app's OTLP protocol, which decides the listener its endpoint names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/HTTP, protobuf or JSON bodies: the collector's HTTP listener.
    Http,
    /// OTLP/gRPC: a gRPC listener the probe starts for it.
    Grpc,
}

/// When SIGTERM is sent.
#[derive(Debug)]
pub enum SigtermWhen {
    /// This long after the app started.
    After(Duration),
    /// When the receiver gets a message (Enter on stdin, or a signal to the probe).
    OnSignal(Receiver<()>),
}

/// Why the probe could not run; each message names the input at fault.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No command after `--`.
    #[error("no command to probe: give it after --, e.g. gracetrace probe -- python3 app.py")]
    NoCommand,
    /// The app asks for an OTLP protocol that is none of OTLP's.
    #[error("{var}={value}: expected one of {}", PROTOCOLS.join(", "))]
    Protocol { var: &'static str, value: String },
    #[error("cannot start the collector: {0}")]
    Collector(#[from] CollectorError),
    /// The command could not be executed.
    #[error("cannot start {program:?}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    /// The load could not start, or the app never became ready for it.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The guardian that takes the app down with a SIGKILLed probe could not start.
    #[error("cannot start the guardian of the app's processes (sh): {0}")]
    Guardian(#[source] std::io::Error),
    /// Waiting for the child failed.
    #[error("cannot watch the app (pid {pid}): {source}")]
    Wait {
        pid: u32,
        #[source]
        source: std::io::Error,
    },
}

/// The protocol the app will use, from its environment (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`
/// wins over `OTEL_EXPORTER_OTLP_PROTOCOL`, as in every SDK); unset leaves the SDK's own
/// default, which the probe sets to http/protobuf.
pub fn check_protocol(env: &dyn Fn(&str) -> Option<String>) -> Result<Protocol, ProbeError> {
    for var in [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ] {
        if let Some(value) = env(var) {
            let value = value.trim().to_owned();
            return match value.as_str() {
                "grpc" => Ok(Protocol::Grpc),
                v if PROTOCOLS.contains(&v) => Ok(Protocol::Http),
                _ => Err(ProbeError::Protocol { var, value }),
            };
        }
    }
    Ok(Protocol::Http)
}

/// The collector for an app of this protocol: the settings' faults and limits, with a
/// gRPC listener on a free loopback port for a gRPC app.
pub fn collector_config(settings: &Settings, protocol: Protocol) -> CollectorConfig {
    let mut config = CollectorConfig::for_settings(settings);
    if protocol == Protocol::Grpc {
        config.grpc_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    }
    config
}

/// The variables the app is started with: where to export (the gRPC listener when the
/// collector has one, for a gRPC app), and the settings' values.
pub fn app_env(settings: &Settings, collector: &Collector) -> Vec<(String, String)> {
    let (base, traces) = match collector.grpc_endpoint() {
        // A gRPC exporter takes the address alone, for every signal alike.
        Some(grpc) => (grpc.clone(), grpc),
        None => (
            format!("http://{}", collector.addr()),
            collector.traces_endpoint(),
        ),
    };
    let mut vars = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), base),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".to_owned(), traces),
    ];
    if std::env::var_os("OTEL_EXPORTER_OTLP_PROTOCOL").is_none() {
        vars.push(("OTEL_EXPORTER_OTLP_PROTOCOL".into(), PROTOCOLS[0].into()));
    }
    for key in APP_KNOBS {
        if let Some(knob) = knobs::find(key)
            && let Some(env) = knob.env
        {
            vars.push((env.to_owned(), (knob.get)(settings)));
        }
    }
    vars
}

/// Who watches a probe run besides its report. The CLI passes the app's output through
/// and watches nothing else ([`PassThrough`]); the window keeps the app's last lines, draws
/// the run as it goes and, when it closes, kills the app at once.
pub trait Watcher: Send + Sync {
    /// Whether the app's stderr comes to [`Watcher::line`] (else it is the probe's own).
    fn captures_stderr(&self) -> bool;
    /// One line the app wrote, newline included, as written.
    fn line(&self, stream: Stream, line: &[u8]);
    /// Every 100 ms while the app runs, and once as soon as it has ended (before the
    /// counts settle): the report so far, and the collector, to read what else it needs.
    fn progress(&self, _report: &ProbeReport, _collector: &Collector) {}
    /// Polled every millisecond: true sends SIGKILL to the app's whole group now.
    fn kill_now(&self) -> bool {
        false
    }
    /// Whether [`Watcher::progress`]'s report carries the `load` section so far (under a
    /// load): counted request by request as they end, which only a live view needs.
    fn live_load(&self) -> bool {
        false
    }
}

/// Which of the app's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// `gracetrace probe`'s watcher: the app's stdout to ours, its stderr left as ours.
pub struct PassThrough;

impl Watcher for PassThrough {
    fn captures_stderr(&self) -> bool {
        false
    }

    fn line(&self, stream: Stream, line: &[u8]) {
        use std::io::Write as _;
        // Our output closed: the line is lost, and the app's writes must still not block.
        let _ = match stream {
            Stream::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(line).and_then(|()| out.flush())
            }
            Stream::Stderr => std::io::stderr().lock().write_all(line),
        };
    }
}

/// Runs `command` against a fresh collector and reports what it saw. The app's stdout and
/// stderr are the probe's own (passed through unchanged); its stdin too unless SIGTERM
/// waits for Enter, which the probe reads.
pub fn run_probe(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    sigterm: SigtermWhen,
) -> Result<ProbeReport, ProbeError> {
    run_probe_with(settings, protocol, command, sigterm, Arc::new(PassThrough))
}

/// [`run_probe`], with `watcher` given the app's output and the run as it goes.
pub fn run_probe_with(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    sigterm: SigtermWhen,
    watcher: Arc<dyn Watcher>,
) -> Result<ProbeReport, ProbeError> {
    probe_app(settings, protocol, command, Signal::Given(sigterm), watcher)
}

/// [`run_probe`] under load: once the app is ready, `plan`'s traffic goes to its URL,
/// SIGTERM comes at the plan's time, and the report has the `load` and `traces` sections.
/// The app's readiness failing (a timeout, or the app ending first) is an error, the app
/// killed with everything it started.
pub fn run_load_probe(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    plan: LoadPlan,
) -> Result<ProbeReport, ProbeError> {
    run_load_probe_with(settings, protocol, command, plan, Arc::new(PassThrough))
}

/// [`run_load_probe`], with `watcher` given the app's output and the run as it goes (with
/// the `load` section so far when it asks, [`Watcher::live_load`]). SIGTERM comes at the
/// plan's time, or sooner through the plan's [`load::EarlySigterm`].
pub fn run_load_probe_with(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    plan: LoadPlan,
    watcher: Arc<dyn Watcher>,
) -> Result<ProbeReport, ProbeError> {
    probe_app(
        settings,
        protocol,
        command,
        Signal::Load(Box::new(plan)),
        watcher,
    )
}

/// Who decides when SIGTERM comes: the caller, or the load (at its plan's time).
enum Signal {
    Given(SigtermWhen),
    Load(Box<LoadPlan>),
}

/// Starts the app (and its load), watches it to its end, and reports.
fn probe_app(
    settings: &Settings,
    protocol: Protocol,
    command: &[String],
    signal: Signal,
    watcher: Arc<dyn Watcher>,
) -> Result<ProbeReport, ProbeError> {
    let collector = Collector::start(collector_config(settings, protocol))?;
    let mark = Mark::new();
    let _guardian = Guardian::start(&mark).map_err(ProbeError::Guardian)?;
    let stdin = match signal {
        Signal::Given(SigtermWhen::OnSignal(_)) => Stdio::null(),
        Signal::Given(SigtermWhen::After(_)) | Signal::Load(_) => Stdio::inherit(),
    };
    let mut child = spawn_app(
        command,
        settings,
        &collector,
        &mark,
        stdin,
        watcher.captures_stderr(),
    )?;
    let (started, pid) = (Instant::now(), child.id());
    let (sigterm, load) = match start_load(signal, watcher.live_load()) {
        Ok(source) => source,
        Err(error) => {
            kill_group(pid);
            mark.kill_marked();
            let _ = child.wait();
            return Err(error.into());
        }
    };
    let echoes = [
        child
            .stdout
            .take()
            .map(|out| echo(out, Stream::Stdout, watcher.clone())),
        child
            .stderr
            .take()
            .map(|err| echo(err, Stream::Stderr, watcher.clone())),
    ];
    let shutdown = Shutdown {
        when: sigterm,
        signal: settings.shutdown.signal,
        grace: Duration::from_millis(settings.shutdown.grace_ms),
    };
    // Empty, and so `None` at every progress, unless the watcher asked for it.
    let live = load.as_ref().map(|(l, plan)| LiveLoad::new(l.feed(), plan));
    let progress = |w: &Watched| {
        let mut report = report_of(command, pid, w, &collector, &shutdown);
        report.load = live.as_ref().and_then(|l| l.section(started));
        watcher.progress(&report, &collector);
    };
    let kill_now = || watcher.kill_now() || load.as_ref().is_some_and(|(l, _)| l.gave_up());
    let watched = watch(pid, &collector, started, &shutdown, &progress, &kill_now);
    // Whatever happened, nothing the app started outlives the probe: its group, and what
    // left the group but carries the run's mark.
    kill_group(pid);
    mark.kill_marked();
    let sent = load.map(|(load, plan)| load.finish().map(|sent| (sent, plan)));
    let mut watched = watched?;
    let sent = sent.transpose()?;
    progress(&watched);
    let deadline = Instant::now() + SETTLE;
    let [stdout, stderr] = echoes.map(|e| e.and_then(|e| finish_echo(e, deadline)));
    wait_settled(&collector);
    // Batches accepted at the end get a bounded chance to reach the forward backend, so
    // the report says what became of them (as `collect` does at its exit).
    collector.wait_forwarded(FORWARD_DRAIN);
    watched.timeline.push(sample(&collector, started));
    let mut report = report_of(command, pid, &watched, &collector, &shutdown);
    report.probe.spans_ended = stdout.or(stderr);
    if let Some((sent, plan)) = sent {
        let (load, traces) = load_sections(&sent, &plan, &watched, &collector, started);
        (report.load, report.traces) = (Some(load), Some(traces));
    }
    collector.shutdown();
    Ok(report)
}

/// The `load` and `traces` sections: a request whose connection died with the app (its
/// SIGKILL or exit, whichever came first) was in flight at its end.
fn load_sections(
    sent: &load::Sent,
    plan: &LoadPlan,
    watched: &Watched,
    collector: &Collector,
    started: Instant,
) -> (LoadSection, TraceSection) {
    let end = [watched.sigkill_ms, watched.exit_ms]
        .into_iter()
        .flatten()
        .reduce(f64::min);
    follow::sections(sent, plan, collector, started, end)
}

/// Who asks for SIGTERM: the caller, or the load, started here with its plan (publishing
/// as it goes when `live`).
fn start_load(
    signal: Signal,
    live: bool,
) -> Result<(SigtermWhen, Option<(Load, LoadPlan)>), LoadError> {
    match signal {
        Signal::Given(sigterm) => Ok((sigterm, None)),
        Signal::Load(plan) => {
            let (ask, asked) = std::sync::mpsc::channel();
            let load = Load::start((*plan).clone(), ask, live)?;
            Ok((SigtermWhen::OnSignal(asked), Some((load, *plan))))
        }
    }
}

/// Starts the app in a process group of its own, with the collector's endpoint, the
/// settings and the run's mark (`reaper`) in its environment; its stdout piped (to read its own count), its stderr
/// piped when the watcher captures it.
fn spawn_app(
    command: &[String],
    settings: &Settings,
    collector: &Collector,
    mark: &Mark,
    stdin: Stdio,
    capture_stderr: bool,
) -> Result<Child, ProbeError> {
    let (program, args) = command.split_first().ok_or(ProbeError::NoCommand)?;
    let stderr = match capture_stderr {
        true => Stdio::piped(),
        false => Stdio::inherit(),
    };
    Command::new(program)
        .args(args)
        .envs(app_env(settings, collector))
        .env(mark.var().0, mark.var().1)
        .stdin(stdin)
        // Piped and echoed line by line (`echo`), to read the app's own count.
        .stdout(Stdio::piped())
        .stderr(stderr)
        // A group of its own: the probe's terminal signals (Ctrl-C) are not the app's, and
        // SIGKILL reaches every process the app started, so none is left behind.
        .process_group(0)
        .spawn()
        .map_err(|source| ProbeError::Spawn {
            program: program.clone(),
            source,
        })
}

/// The report of what the watch loop has seen so far, with the collector's counts now.
fn report_of(
    command: &[String],
    pid: u32,
    w: &Watched,
    collector: &Collector,
    shutdown: &Shutdown,
) -> ProbeReport {
    let probe = section(command, pid, w, collector, shutdown);
    ProbeReport::new(collector.stats(), probe, w.timeline.clone())
}

/// Passes the app's output to `watcher`, line by line and byte for byte, and keeps the
/// last `spans ended: N` it printed (the convention of the seed's test apps). A thread, so
/// the app never blocks on a full pipe while the watch loop polls.
fn echo(
    from: impl std::io::Read + Send + 'static,
    stream: Stream,
    watcher: Arc<dyn Watcher>,
) -> std::thread::JoinHandle<Option<u64>> {
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        let mut reader = std::io::BufReader::new(from);
        let mut line = Vec::new();
        let mut ended = None;
        // Ends at EOF (every process of the app is gone) or a read error.
        while matches!(reader.read_until(b'\n', &mut line), Ok(n) if n > 0) {
            watcher.line(stream, &line);
            if let Some(n) = spans_ended_in(&line) {
                ended = Some(n);
            }
            line.clear();
        }
        ended
    })
}

/// `spans ended: N` as the seed's apps print it, or `None`.
fn spans_ended_in(line: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(line).ok()?;
    text.trim()
        .strip_prefix("spans ended:")?
        .trim()
        .parse()
        .ok()
}

/// Waits for the echo to reach the end of the app's output: until `deadline`, because a
/// process that left the app's group could hold the pipe open; its count is then unknown.
fn finish_echo(echo: std::thread::JoinHandle<Option<u64>>, deadline: Instant) -> Option<u64> {
    while !echo.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    if echo.is_finished() {
        echo.join().ok().flatten()
    } else {
        None
    }
}

fn unix_ns(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The earliest start among the spans the collector keeps (Unix ns, as the app sent it).
fn first_span_start(collector: &Collector) -> Option<u64> {
    let traces = collector.recent_traces();
    let starts = traces.iter().flat_map(|t| t.spans.iter());
    starts.map(|s| s.start_unix_nano).filter(|&ns| ns > 0).min()
}

/// Spans ended per second, from the end times of the spans the collector keeps (its
/// recent traces): the app's own pace, which export batching and backend latency hide
/// from the arrival times. `None` with fewer than two distinct end times.
fn ended_per_s(collector: &Collector) -> Option<(f64, u64)> {
    let traces = collector.recent_traces();
    let mut ends: Vec<u64> = traces
        .iter()
        .flat_map(|t| t.spans.iter().map(|s| s.end_unix_nano))
        .filter(|&ns| ns > 0)
        .collect();
    ends.sort_unstable();
    let (first, last) = (*ends.first()?, *ends.last()?);
    let span_s = (last - first) as f64 / 1e9;
    (span_s > 0.0).then(|| ((ends.len() - 1) as f64 / span_s, ends.len() as u64))
}

/// What had arrived at SIGTERM, and between which samples it arrived.
fn before_sigterm(w: &Watched) -> Option<BeforeSigterm> {
    let (at, sigterm_ms) = (w.at_sigterm.as_ref()?, w.sigterm_ms?);
    let mut grew = w.timeline.windows(2).filter_map(|pair| {
        (pair[1].t_ms <= sigterm_ms && pair[1].spans_received > pair[0].spans_received)
            .then_some(pair[1])
    });
    let first = grew.next();
    let last = grew.next_back().or(first);
    Some(BeforeSigterm {
        spans: at.spans_received,
        requests: at.requests_accepted,
        traces: at.traces_seen,
        first_arrival_ms: first.map(|s| s.t_ms),
        last_arrival_ms: last.map(|s| s.t_ms),
        spans_at_first_arrival: first.map_or(0, |s| s.spans_received),
        first_span_start_ms: w.first_span_start_ms,
        ended_per_s: w.ended_per_s.map(|(rate, _)| rate),
        ends_measured: w.ended_per_s.map_or(0, |(_, n)| n),
    })
}

/// The platform's shutdown as the watch loop plays it: when the stop signal goes, which
/// signal (the platform's: SIGINT on Fly.io), and the grace period before SIGKILL.
struct Shutdown {
    when: SigtermWhen,
    signal: StopSignal,
    grace: Duration,
}

impl Shutdown {
    fn signal_number(&self) -> libc::c_int {
        match self.signal {
            StopSignal::Sigterm => libc::SIGTERM,
            StopSignal::Sigint => libc::SIGINT,
        }
    }
}

/// What the watch loop saw.
#[derive(Debug)]
struct Watched {
    /// How the app ended, and when; `None` while it runs.
    status: Option<ExitStatus>,
    sigterm_ms: Option<f64>,
    sigkill_ms: Option<f64>,
    exit_ms: Option<f64>,
    /// The collector's counts when SIGTERM was sent.
    at_sigterm: Option<CollectorStats>,
    /// The earliest span start among the first spans to arrive, ms since the app started.
    first_span_start_ms: Option<f64>,
    /// At SIGTERM: spans ended per second and how many span ends it was measured from.
    ended_per_s: Option<(f64, u64)>,
    /// At SIGTERM: the CPU time of the app's process group, ms (`cpu::group_cpu_ms`).
    cpu_before_sigterm_ms: Option<f64>,
    /// When it was reaped: the app's CPU time with its waited-for children's, ms.
    cpu_total_ms: Option<f64>,
    timeline: Vec<ProbeSample>,
}

/// Polls the child every millisecond: sends the stop signal when due, SIGKILL at the end
/// of the grace period (or when `kill_now` says so), samples the collector every 100 ms and
/// tells `progress`, until the child has ended; then the child is reaped (`cpu::try_reap`,
/// for its CPU time) and `Child::wait` must not be called for it.
fn watch(
    pid: u32,
    collector: &Collector,
    started: Instant,
    shutdown: &Shutdown,
    progress: &dyn Fn(&Watched),
    kill_now: &dyn Fn() -> bool,
) -> Result<Watched, ProbeError> {
    let ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
    let mut w = Watched {
        status: None,
        sigterm_ms: None,
        sigkill_ms: None,
        exit_ms: None,
        at_sigterm: None,
        first_span_start_ms: None,
        ended_per_s: None,
        cpu_before_sigterm_ms: None,
        cpu_total_ms: None,
        timeline: Vec::new(),
    };
    let started_unix_ns = unix_ns(std::time::SystemTime::now());
    let (mut sigterm_at, mut next_sample) = (None, started);
    loop {
        let now = Instant::now();
        if let Some((status, cpu_ms)) =
            cpu::try_reap(pid).map_err(|source| ProbeError::Wait { pid, source })?
        {
            (w.status, w.exit_ms) = (Some(status), Some(ms(now)));
            w.cpu_total_ms = Some(cpu_ms);
            return Ok(w);
        }
        if sigterm_at.is_none() && sigterm_due(&shutdown.when, now - started) {
            w.at_sigterm = Some(collector.stats());
            w.ended_per_s = ended_per_s(collector);
            w.cpu_before_sigterm_ms = cpu::group_cpu_ms(pid);
            signal(pid, shutdown.signal_number());
            sigterm_at = Some(now);
            w.sigterm_ms = Some(ms(now));
        }
        let deadline = sigterm_at.is_some_and(|at| now >= at + shutdown.grace);
        if w.sigkill_ms.is_none() && (deadline || kill_now()) {
            // As the platform does at the deadline: every process of the app, at once (and
            // at once when the watcher is going away: nobody is left to watch a shutdown).
            kill_group(pid);
            w.sigkill_ms = Some(ms(now));
        }
        if now >= next_sample {
            let sampled = sample(collector, started);
            if w.first_span_start_ms.is_none() && sampled.spans_received > 0 {
                w.first_span_start_ms = first_span_start(collector)
                    .map(|ns| ns.saturating_sub(started_unix_ns) as f64 / 1e6);
            }
            if w.timeline.len() < MAX_SAMPLES {
                w.timeline.push(sampled);
            }
            next_sample += SAMPLE_EVERY;
            progress(&w);
        }
        std::thread::sleep(POLL);
    }
}

/// Whether SIGTERM is due `elapsed` after the start. A closed channel (stdin at its end,
/// the signal thread gone) counts as asked: the user can no longer ask otherwise.
fn sigterm_due(when: &SigtermWhen, elapsed: Duration) -> bool {
    match when {
        SigtermWhen::After(at) => elapsed >= *at,
        SigtermWhen::OnSignal(asked) => !matches!(asked.try_recv(), Err(TryRecvError::Empty)),
    }
}

/// Sends `sig` to the app's main process, as the platform sends SIGTERM to a container's
/// first process. A failure means it has already ended, which the watch loop sees next.
fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) takes two integers and touches no memory of ours. The pid is our
    // child's, which is not reaped before the watch loop has seen it end, so it cannot
    // have been recycled.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig);
    }
}

/// SIGKILL to the app's whole process group (its id is the app's pid: `process_group(0)`).
/// Harmless when the group is already empty (ESRCH).
fn kill_group(pid: u32) {
    let Ok(pgid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: as in `signal`; a negative pid names the process group the probe created
    // for the app, which holds only the app and what it started.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
}

/// Waits (at most [`SETTLE`]) until no request is still held by the collector: those of a
/// killed app are abandoned as their connections close, those of an app that exited were
/// answered before it exited.
fn wait_settled(collector: &Collector) {
    let deadline = Instant::now() + SETTLE;
    while collector.stats().requests_in_flight > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sample(collector: &Collector, started: Instant) -> ProbeSample {
    let stats = collector.stats();
    ProbeSample {
        t_ms: started.elapsed().as_secs_f64() * 1000.0,
        spans_received: stats.spans_received,
        requests_accepted: stats.requests_accepted,
        requests: stats.requests,
    }
}

/// The `probe` section, from what the watch loop saw and the collector's final counts.
fn section(
    command: &[String],
    pid: u32,
    w: &Watched,
    collector: &Collector,
    shutdown: &Shutdown,
) -> ProbeSection {
    let end = collector.stats();
    let at_sigterm = w.at_sigterm.clone();
    let after = |f: fn(&CollectorStats) -> u64| {
        at_sigterm
            .as_ref()
            .map_or(0, |s| f(&end).saturating_sub(f(s)))
    };
    let resource = collector.app_resource().unwrap_or_default();
    // One pass over the collector's traces: counted once the app has ended, not every
    // sample while it runs (until then they read 0).
    let orphans = match w.status {
        Some(_) => collector.orphans(),
        None => Default::default(),
    };
    let signal = w.status.and_then(|s| s.signal());
    ProbeSection {
        command: command.to_vec(),
        pid,
        exit_code: w.status.and_then(|s| s.code()),
        killed: w.sigkill_ms.is_some() && signal == Some(libc::SIGKILL),
        signal,
        sigterm_ms: w.sigterm_ms,
        exit_ms: w.exit_ms,
        sigkill_ms: w.sigkill_ms,
        stop_signal: shutdown.signal.signal_name().to_owned(),
        grace_ms: u64::try_from(shutdown.grace.as_millis()).unwrap_or(u64::MAX),
        cpu_before_sigterm_ms: w.cpu_before_sigterm_ms,
        cpu_total_ms: w.cpu_total_ms,
        spans_after_sigterm: after(|s| s.spans_received),
        requests_after_sigterm: after(|s| s.requests_accepted),
        requests_cut_off: end
            .rejected_by_reason
            .get("body_read_error")
            .copied()
            .unwrap_or(0),
        requests_abandoned: end.requests_abandoned,
        orphan_spans: orphans.spans,
        orphan_traces: orphans.traces,
        rules: resource.rules().map(str::to_owned),
        service_name: resource.service_name.clone(),
        sdk: Sdk {
            language: resource.sdk_language,
            version: resource.sdk_version,
        },
        spans_ended: None,
        before_sigterm: before_sigterm(w),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The protocol check: unset and the HTTP encodings are HTTP, `grpc` is gRPC, anything
    /// else is refused naming the variable the app set, and the traces-only variable wins
    /// as in the SDKs.
    #[test]
    fn protocols_the_collector_takes() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |var: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == var)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(check_protocol(&env(&[])).unwrap(), Protocol::Http);
        let json = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")]);
        assert_eq!(check_protocol(&json).unwrap(), Protocol::Http);
        let grpc = env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", " grpc ")]);
        assert_eq!(check_protocol(&grpc).unwrap(), Protocol::Grpc);
        let err = check_protocol(&env(&[("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OTEL_EXPORTER_OTLP_PROTOCOL=thrift: expected one of http/protobuf, http/json, grpc"
        );
        let both = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        assert_eq!(check_protocol(&both).unwrap(), Protocol::Http);
        let traces_grpc = env(&[
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
        ]);
        assert_eq!(check_protocol(&traces_grpc).unwrap(), Protocol::Grpc);
    }

    /// A gRPC app's endpoint variables name the gRPC listener, with no path; an HTTP app's
    /// the HTTP one, the traces variable with `/v1/traces`.
    #[test]
    fn the_endpoint_matches_the_protocol() {
        let settings = Settings::default();
        let find = |vars: &[(String, String)], name: &str| {
            vars.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let grpc = Collector::start(collector_config(&settings, Protocol::Grpc)).unwrap();
        let addr = grpc.grpc_addr().expect("a gRPC listener");
        assert!(addr.ip().is_loopback() && addr.port() != 0);
        let vars = app_env(&settings, &grpc);
        for var in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ] {
            assert_eq!(find(&vars, var), format!("http://{addr}"), "{var}");
        }
        let http = Collector::start(collector_config(&settings, Protocol::Http)).unwrap();
        assert_eq!(http.grpc_addr(), None);
        let vars = app_env(&settings, &http);
        assert_eq!(
            find(&vars, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            http.traces_endpoint()
        );
        assert_eq!(
            find(&vars, "OTEL_EXPORTER_OTLP_ENDPOINT"),
            format!("http://{}", http.addr())
        );
    }
}
