//! gracetrace's own batch span processor: one queue, three rule books.
//!
//! The stock processors hide what a user most needs to see (queue length, which span was
//! dropped, when a batch left), and the Python one is not available from Rust at all. So
//! this processor reimplements both, rule by rule, each rule citing the upstream line it
//! follows:
//! - `python.rs`: opentelemetry-sdk 1.41, `opentelemetry/sdk/_shared_internal/__init__.py`,
//!   class `BatchProcessor`;
//! - `rust.rs`: opentelemetry_sdk 0.33.1, `src/trace/span_processor.rs`, `BatchSpanProcessor`;
//! - `js.rs`: @opentelemetry/sdk-trace 2.12.1, `BatchSpanProcessorBase`.
//!
//! The queue itself, the counters it keeps in the [`Record`], and SIGKILL are shared.

mod export_pool;
mod js;
mod python;
mod queue;
mod rust;

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};

use crate::record::Record;
use crate::telemetry::rules::{Profile, rules};
use crate::telemetry::wire::RunnerLife;
use export_pool::ExportPool;
use queue::SpanQueue;

/// The seed's four batch settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    pub max_queue_size: usize,
    pub max_export_batch_size: usize,
    pub schedule_delay: Duration,
    /// Only js enforces it, and only by no longer waiting (`rules::js::stops_waiting`).
    pub export_timeout: Duration,
}

/// Messages to the rust worker; `sync_channel::<BatchMessage>(64)` upstream.
enum Message {
    ExportSpan,
    ForceFlush(std::sync::mpsc::SyncSender<OTelSdkResult>),
    Shutdown(std::sync::mpsc::SyncSender<OTelSdkResult>),
}

/// What the producer threads and the worker share.
///
/// A thread ending a span touches only the queue and atomics: it never waits while the
/// worker exports, as with the stock processors (rust's span channel, python's `deque`
/// under the GIL). One mutex that producers shared with the worker's control state, and
/// under which an evicted span was freed, was measured to cost request latency p99 170 ms
/// against the stock processor's 3.9 ms at 20,000 requests/s x 48 spans on 2 cores: a
/// producer preempted while holding it stalls all the others. So rust's and js's queue is
/// lock-free, and python's deque has a lock of its own held for one eviction and one append
/// (`queue.rs`). The mutex here guards only the worker's control state (the rust
/// messages, and the condition variable's wait), which a producer takes once per batch.
struct Shared<E> {
    profile: Profile,
    config: BatchConfig,
    /// Oldest first; its shape follows the profile's full-queue rule (`queue.rs`).
    queue: SpanQueue<SpanData>,
    /// No span is accepted any more (python `_shutdown`; rust: the channel is closed).
    shutdown: AtomicBool,
    /// Python: `_worker_awaken` (a `threading.Event`).
    awaken: AtomicBool,
    /// Python: `_shutdown_timeout_exceeded`: stops further batches after shutdown's join.
    shutdown_timeout_exceeded: AtomicBool,
    /// Rust: `current_batch_size`, spans counted but not yet exported (includes the batch
    /// being exported, which is why it can exceed the queue length).
    pending: AtomicUsize,
    /// Rust: `export_span_message_sent`.
    export_message_sent: AtomicBool,
    /// Rust: the control channel. Its mutex is also the one `wake` waits with.
    messages: Mutex<VecDeque<Message>>,
    /// Signalled when the worker may have something to do.
    wake: Condvar,
    /// Python's `_export_lock`: the worker and `force_flush` export under it, so a flush
    /// waits for the worker's export in flight (how the seed's flush runs into SIGKILL).
    export_lock: Mutex<()>,
    /// Behind a lock only so `set_resource(&mut)` can reach it; export and shutdown
    /// take it shared (Python's exporter shutdown interrupts an export's retry wait).
    exporter: RwLock<E>,
    record: Arc<Record>,
    /// The runner's life: a span handed over after its kill is ignored (see `on_end`).
    life: Arc<RunnerLife>,
    /// Set by SIGKILL: the worker must not start another export.
    killed: AtomicBool,
    /// Js: `_isExporting`, a timer export is in flight.
    exporting: AtomicBool,
    /// Js: when `_timer` fires, nanoseconds after `born`; 0 while no timer runs.
    timer_at: AtomicU64,
    /// Js: exports in flight on their own threads, from every path.
    in_flight: AtomicUsize,
    /// Js: the threads those exports run on (`export_pool.rs`).
    export_threads: ExportPool,
    born: Instant,
}

impl<E> Shared<E> {
    /// Wakes the worker. The flag the worker waits for is set before this call; taking
    /// the mutex first means a worker between its check and its wait cannot miss it.
    fn notify_worker(&self) {
        drop(lock(&self.messages));
        self.wake.notify_all();
    }

    /// Takes up to `count` spans from the front of the queue, oldest first.
    fn take_batch(&self, count: usize) -> Vec<SpanData> {
        self.queue.take(count)
    }

    /// Empties the queue and returns how many spans it held.
    fn clear_queue(&self) -> u64 {
        self.queue.clear()
    }
}

/// A batch span processor following the Python or the Rust rules. Clones are handles to
/// the same processor: the provider owns one, the pipeline keeps one to observe and kill.
pub struct GraceBatchProcessor<E: SpanExporter + 'static> {
    shared: Arc<Shared<E>>,
    worker: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl<E: SpanExporter + 'static> Clone for GraceBatchProcessor<E> {
    fn clone(&self) -> Self {
        GraceBatchProcessor {
            shared: self.shared.clone(),
            worker: self.worker.clone(),
        }
    }
}

impl<E: SpanExporter + 'static> fmt::Debug for GraceBatchProcessor<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraceBatchProcessor")
            .field("profile", &self.shared.profile)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<E: SpanExporter + 'static> GraceBatchProcessor<E> {
    pub fn new(
        profile: Profile,
        config: BatchConfig,
        exporter: E,
        record: Arc<Record>,
        life: Arc<RunnerLife>,
    ) -> Self {
        let shared = Arc::new(Shared {
            profile,
            config,
            queue: SpanQueue::new(rules(profile).full_queue(), config.max_queue_size),
            shutdown: AtomicBool::new(false),
            awaken: AtomicBool::new(false),
            shutdown_timeout_exceeded: AtomicBool::new(false),
            pending: AtomicUsize::new(0),
            export_message_sent: AtomicBool::new(false),
            messages: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            export_lock: Mutex::new(()),
            exporter: RwLock::new(exporter),
            record,
            life,
            killed: AtomicBool::new(false),
            exporting: AtomicBool::new(false),
            timer_at: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            export_threads: ExportPool::new(),
            born: Instant::now(),
        });
        let for_worker = shared.clone();
        let name = match profile {
            Profile::Python => "OtelBatchSpanRecordProcessor",
            Profile::Rust => "OpenTelemetry.Traces.BatchProcessor",
            // Node has one thread; this one stands for the BSP's timer callbacks.
            Profile::Js => "gracetrace-js-bsp-timer",
        };
        let worker = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || match for_worker.profile {
                Profile::Python => python::worker(&for_worker),
                Profile::Rust => rust::worker(&for_worker),
                Profile::Js => js::worker(&for_worker),
            })
            .ok();
        GraceBatchProcessor {
            shared,
            worker: Arc::new(Mutex::new(worker)),
        }
    }

    /// Spans waiting in the queue right now.
    pub fn queue_len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Python's `force_flush(timeout_millis)`: the timeout is accepted and ignored, as
    /// upstream (issue 4568); it exports everything on the caller's thread.
    pub fn force_flush_python(&self, _timeout: Duration) -> bool {
        python::force_flush(&self.shared)
    }

    /// Js `NodeTracerProvider.forceFlush({timeoutMillis})`: every buffered batch at once,
    /// waiting at most `timeout`.
    pub fn force_flush_js(&self, timeout: Duration) -> OTelSdkResult {
        js::force_flush(&self.shared, timeout)
    }

    /// SIGKILL: nothing more leaves. Spans still in the queue are lost; the worker is
    /// abandoned, not joined (a killed process does not wait for its threads).
    /// Returns how many queued spans were lost.
    pub fn kill(&self) -> u64 {
        let shared = &self.shared;
        shared.killed.store(true, SeqCst);
        shared.shutdown.store(true, SeqCst);
        shared.shutdown_timeout_exceeded.store(true, SeqCst);
        let lost = shared.clear_queue();
        shared.notify_worker();
        let record = &self.shared.record.counters;
        record.queued.fetch_sub(lost as i64, Relaxed);
        record.lost_at_kill.fetch_add(lost, Relaxed);
        lock(&self.worker).take();
        lost
    }

    fn join_worker(&self, timeout: Duration) -> bool {
        let Some(handle) = lock(&self.worker).take() else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return false; // abandoned, like Python's daemon thread after join(timeout)
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = handle.join();
        true
    }
}

impl<E: SpanExporter + 'static> SpanProcessor for GraceBatchProcessor<E> {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if self.shared.life.is_killed() {
            // A span the request thread left open at the kill (never counted as created),
            // ended now only because its handle was dropped: a dead process hands over
            // nothing.
            return;
        }
        if !span.span_context.is_sampled() {
            return; // both SDKs' batch processors skip unsampled spans
        }
        match self.shared.profile {
            Profile::Python => python::emit(&self.shared, span),
            Profile::Rust => rust::on_end(&self.shared, span),
            Profile::Js => js::on_end(&self.shared, span),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        match self.shared.profile {
            Profile::Python => {
                if python::force_flush(&self.shared) {
                    Ok(())
                } else {
                    Err(OTelSdkError::AlreadyShutdown)
                }
            }
            Profile::Rust => rust::force_flush(&self.shared),
            Profile::Js => js::force_flush(&self.shared, js::PROVIDER_FLUSH_WAIT),
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        match self.shared.profile {
            Profile::Python => python::shutdown(self, timeout),
            Profile::Rust => rust::shutdown(self, timeout),
            Profile::Js => js::shutdown(self, timeout),
        }
    }

    /// Forwarded, or the exporter would send spans without `service.name`: the OTLP
    /// exporter takes the resource only in its own `set_resource` (opentelemetry-otlp 0.33.1
    /// `src/exporter/http/trace.rs`), and `SpanExporter::set_resource` does nothing by
    /// default (opentelemetry_sdk 0.33.1 `src/trace/export.rs`).
    fn set_resource(&mut self, resource: &Resource) {
        self.shared
            .exporter
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .set_resource(resource);
    }
}

/// Exports one batch through the exporter, blocking, as both SDKs do on their worker.
fn export_batch<E: SpanExporter>(shared: &Shared<E>, batch: Vec<SpanData>) -> OTelSdkResult {
    let exporter = shared.exporter.read().unwrap_or_else(|e| e.into_inner());
    futures_executor::block_on(exporter.export(batch))
}

fn shutdown_exporter<E: SpanExporter>(shared: &Shared<E>) {
    let exporter = shared.exporter.read().unwrap_or_else(|e| e.into_inner());
    let _ = exporter.shutdown();
}

/// Waits on the condvar until `done` holds or `deadline` passes; returns the guard of
/// the control state. `done` reads the atomics and the messages under that guard, so a
/// producer's `notify_worker` after setting a flag cannot slip between check and wait.
fn wait_until<'a, E>(
    shared: &'a Shared<E>,
    deadline: Instant,
    done: impl Fn(&Shared<E>, &VecDeque<Message>) -> bool,
) -> MutexGuard<'a, VecDeque<Message>> {
    let wake = &shared.wake;
    let mut state = lock(&shared.messages);
    while !done(shared, &state) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        state = wake
            .wait_timeout(state, deadline - now)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    state
}

/// Locks, carrying on after a panic elsewhere: the data under these locks stays valid.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
