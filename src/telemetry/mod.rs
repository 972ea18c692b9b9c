//! The OpenTelemetry pipeline of one runner: provider, live sampler, batch processor and
//! OTLP/HTTP exporter, rebuilt live when the user changes a setting.
//!
//! A "generation" is one provider with its processor and exporter. Changing the batch
//! settings or the semantics builds a new generation and swaps it in; the old one is
//! shut down only once every request that started spans on it has finished, and its
//! shutdown drains its queue, so a swap loses no span the old settings had accepted
//! (a cached tracer would keep the old provider: an `SdkTracer` holds its own
//! `SdkTracerProvider`, opentelemetry_sdk 0.33.1 `src/trace/tracer.rs`; here producers fetch the
//! current generation per request, behind a lock). The sample rate needs no swap: the
//! sampler reads it from an atomic.

mod error;
pub mod exporter;
pub mod ids;
pub mod processor;
pub mod rules;
pub mod sampler;
pub mod stock;
pub mod wire;

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, RetryPolicy, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

use crate::config::draws::{Sequence, Stream};
use crate::config::{BatchSettings, Semantics, Settings};
pub use error::{FlushError, PipelineError};

use crate::record::wire::KillWitness;
use crate::record::{KillLosses, Record};
use exporter::InstrumentedExporter;
use processor::{BatchConfig, GraceBatchProcessor};
use rules::Profile;
use sampler::{RatioFormula, SampleRate};
use stock::{CountedStockProcessor, StockCounts};
use wire::{ExportProbe, RetryRules, RunnerLife, WireClient};

/// The exporter every generation uses: the real OTLP/HTTP exporter, instrumented.
pub type Exporter = InstrumentedExporter<opentelemetry_otlp::SpanExporter>;

/// How long the exporter keeps an idle connection: shorter than the embedded collector's
/// default header read timeout (30 s), which also closes idle connections, so that the
/// exporter lets a connection go before the collector does instead of sending a request
/// on it as it closes, a connection error the backend never caused.
const POOL_IDLE: Duration = Duration::from_secs(15);

/// How long each SDK's provider shutdown waits for its processor to drain: python's
/// `BatchProcessor.shutdown(timeout_millis=30000)` (opentelemetry-sdk 1.41.0
/// `opentelemetry/sdk/_shared_internal/__init__.py` l. 224-232), rust's `shutdown_with_timeout(
/// Duration::from_secs(5))` behind `SdkTracerProvider::shutdown` (opentelemetry_sdk 0.33.1
/// `src/trace/provider.rs` l. 273-274); js's provider has none (see `rules::js`).
/// The rule books hold the values; the stock processor's is `rules::stock`.
pub fn shutdown_timeout(semantics: Semantics) -> Duration {
    rules::book(semantics).shutdown_wait()
}

enum ProcessorHandle {
    Own(GraceBatchProcessor<Exporter>),
    Stock(StockCounts),
}

/// One provider and its processor, built from one set of settings.
pub struct Generation {
    pub id: u64,
    pub semantics: Semantics,
    pub tracer: SdkTracer,
    provider: SdkTracerProvider,
    processor: ProcessorHandle,
}

impl Generation {
    /// Spans waiting in this generation's queue, where the processor tells.
    pub fn queue_len(&self) -> Option<usize> {
        match &self.processor {
            ProcessorHandle::Own(p) => Some(p.queue_len()),
            ProcessorHandle::Stock(_) => None,
        }
    }

    /// The project's processor, for the lifecycle's flush and kill.
    pub fn own_processor(&self) -> Option<&GraceBatchProcessor<Exporter>> {
        match &self.processor {
            ProcessorHandle::Own(p) => Some(p),
            ProcessorHandle::Stock(_) => None,
        }
    }

    /// teardown()'s `force_flush`, as each SDK does it: python exports everything on
    /// this thread whatever the timeout; js sends every batch at once and waits at most
    /// the timeout; rust and the stock processor wait at most 5 s.
    pub fn force_flush(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.processor {
            ProcessorHandle::Own(p) if self.semantics == Semantics::Python => {
                if p.force_flush_python(timeout) {
                    Ok(())
                } else {
                    Err(FlushError::AlreadyShutDown)
                }
            }
            ProcessorHandle::Own(p) if self.semantics == Semantics::Js => {
                Ok(p.force_flush_js(timeout)?)
            }
            _ => Ok(self.provider.force_flush()?),
        }
    }

    /// Clean shutdown: drains the queue through the exporter, as each SDK does.
    fn shutdown(&self, record: &Record, life: &RunnerLife) {
        let _ = self
            .provider
            .shutdown_with_timeout(shutdown_timeout(self.semantics));
        if let ProcessorHandle::Stock(counts) = &self.processor
            && !life.is_killed()
        {
            stock::settle_drops(record, counts);
        }
    }

    /// SIGKILL: what was waiting in this generation's queue is lost. Returns the count.
    fn kill(&self, record: &Record) -> u64 {
        match &self.processor {
            ProcessorHandle::Own(p) => p.kill(),
            // The stock processor cannot be stopped or looked into: what it held dies
            // with the process.
            ProcessorHandle::Stock(counts) => stock::kill(record, counts),
        }
    }
}

/// The telemetry of one runner.
pub struct Pipeline {
    record: Arc<Record>,
    sample_rate: SampleRate,
    endpoint: String,
    life: Arc<RunnerLife>,
    http: reqwest::Client,
    /// `exporter.headers`, sent with every export.
    headers: http::HeaderMap,
    /// Runs the exporter's HTTP requests (see `wire.rs`).
    runtime: tokio::runtime::Runtime,
    current: RwLock<Option<Arc<Generation>>>,
    applied: Mutex<Settings>,
    retiring: Mutex<Vec<JoinHandle<()>>>,
    /// Every generation not yet shut down (the current one and those retiring), for kill.
    live: Mutex<Vec<Weak<Generation>>>,
    next_generation: AtomicU64,
}

impl Pipeline {
    /// Builds the first generation. `endpoint` is the full `/v1/traces` URL.
    pub fn start(
        settings: &Settings,
        endpoint: String,
        record: Arc<Record>,
        runner_id: u64,
    ) -> Result<Pipeline, PipelineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gracetrace-exporter-http")
            .enable_all()
            .build()
            .map_err(PipelineError::Runtime)?;
        let http = crate::config::tls::client_builder(settings.exporter.ca_file.as_deref())?
            .no_proxy()
            .pool_idle_timeout(POOL_IDLE)
            .build()
            .map_err(PipelineError::HttpClient)?;
        let pipeline = Pipeline {
            record,
            sample_rate: SampleRate::new(settings.tracing.sample_rate),
            endpoint,
            life: Arc::new(RunnerLife::new(runner_id)),
            http,
            headers: settings.exporter.headers.to_header_map(),
            runtime,
            current: RwLock::new(None),
            applied: Mutex::new(settings.clone()),
            retiring: Mutex::new(Vec::new()),
            live: Mutex::new(Vec::new()),
            next_generation: AtomicU64::new(1),
        };
        let first = pipeline.build_generation(settings)?;
        *pipeline.current.write().unwrap_or_else(|e| e.into_inner()) = first;
        Ok(pipeline)
    }

    pub fn record(&self) -> &Arc<Record> {
        &self.record
    }

    pub fn life(&self) -> &Arc<RunnerLife> {
        &self.life
    }

    /// The generation a new request should trace with; `None` when tracing is off.
    pub fn tracer(&self) -> Option<Arc<Generation>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn settings(&self) -> Settings {
        self.applied
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies new settings live. The caller has validated them.
    ///
    /// All or nothing: the new generation (if one is needed) is built before anything
    /// changes, so an error leaves the pipeline exactly as it was.
    pub fn reconfigure(&self, new: &Settings) -> Result<(), PipelineError> {
        let old = self.settings();
        let needs_swap = old.tracing.enabled != new.tracing.enabled
            || old.tracing.semantics != new.tracing.semantics
            || old.tracing.service_name != new.tracing.service_name
            || old.batch != new.batch
            || old.exporter.timeout_ms != new.exporter.timeout_ms;
        let next = if needs_swap {
            Some(self.build_generation(new)?)
        } else {
            None
        };
        if old.tracing.sample_rate != new.tracing.sample_rate {
            self.sample_rate.set(new.tracing.sample_rate);
            self.record.mark(format!(
                "sample_rate {} -> {}",
                old.tracing.sample_rate, new.tracing.sample_rate
            ));
        }
        if let Some(next) = next {
            let previous = {
                let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
                std::mem::replace(&mut *current, next)
            };
            self.record.mark(describe_swap(&old, new));
            if let Some(previous) = previous {
                self.retire(previous);
            }
        }
        *self.applied.lock().unwrap_or_else(|e| e.into_inner()) = new.clone();
        Ok(())
    }

    /// Shuts the old generation down once no request holds it any more.
    fn retire(&self, generation: Arc<Generation>) {
        let record = self.record.clone();
        let life = self.life.clone();
        let handle = std::thread::Builder::new()
            .name(format!("gracetrace-retire-{}", generation.id))
            .spawn(move || {
                while Arc::strong_count(&generation) > 1 && !life.is_killed() {
                    std::thread::sleep(Duration::from_millis(2));
                }
                generation.shutdown(&record, &life);
            });
        if let Ok(handle) = handle {
            self.retiring
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(handle);
        }
    }

    /// Clean end of a run: every generation drains and shuts down; returns when done.
    pub fn shutdown(&self) {
        let last = self
            .current
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(last) = last {
            self.retire(last);
        }
        let handles: Vec<_> = self
            .retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
            .collect();
        for handle in handles {
            let _ = handle.join();
        }
    }

    /// SIGKILL, simulated in-process as the real one behaves: from this instant nothing
    /// of this runner reaches the backend. The collector is told first, so a request it
    /// has not yet counted never will be; then the runner's HTTP requests are cut off,
    /// its queues emptied into `lost_at_kill`, and its exports in flight settled by
    /// asking the collector whether it had accepted them. Threads are abandoned, not
    /// joined. Without an embedded collector, exports in flight count as lost.
    pub fn kill<W: KillWitness>(&self, backend: Option<&W>) -> KillLosses {
        if let Some(backend) = backend {
            backend.runner_killed(self.life.id);
        }
        self.life.kill();
        let generations: Vec<Arc<Generation>> = self
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        let in_queues: u64 = generations.iter().map(|g| g.kill(&self.record)).sum();
        let acknowledged = |id: &str| backend.is_some_and(|b| b.acknowledged(id));
        let (in_flight_export, in_flight_but_delivered) =
            self.record.settle_exports_at_kill(&acknowledged);
        // Spans a worker had taken out of its queue and not yet handed to the exporter:
        // still in the runner's memory, so lost with the queue. The exporter opens no
        // export after `life.kill()`, so whatever `queued` still counts is exactly these.
        let counters = &self.record.counters;
        let in_hand = counters.queued.load(Relaxed).max(0);
        counters.queued.fetch_sub(in_hand, Relaxed);
        counters.lost_at_kill.fetch_add(in_hand as u64, Relaxed);
        let queued = in_queues + in_hand as u64;
        // Nothing is waited for: the retiring threads see the kill and return.
        self.retiring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        KillLosses {
            queued,
            in_flight_export,
            in_flight_but_delivered,
        }
    }

    fn build_generation(
        &self,
        settings: &Settings,
    ) -> Result<Option<Arc<Generation>>, PipelineError> {
        if !settings.tracing.enabled {
            return Ok(None); // no provider, no processor, no export thread
        }
        let id = self.next_generation.fetch_add(1, Relaxed);
        let semantics = settings.tracing.semantics;
        let exporter = self.build_exporter(
            id,
            semantics,
            settings.exporter.timeout_ms,
            settings.workload.seed,
        )?;
        let formula = RatioFormula::of(semantics);
        let builder = SdkTracerProvider::builder()
            .with_sampler(self.sample_rate.parent_based(formula))
            .with_id_generator(ids::RequestTraceIds::default())
            .with_resource(
                Resource::builder()
                    .with_service_name(settings.tracing.service_name.clone())
                    .build(),
            );
        let (provider, processor) =
            self.build_processor(builder, semantics, &settings.batch, exporter);
        let tracer = provider.tracer("gracetrace");
        let generation = Arc::new(Generation {
            id,
            semantics,
            tracer,
            provider,
            processor,
        });
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|g| g.strong_count() > 0);
        live.push(Arc::downgrade(&generation));
        Ok(Some(generation))
    }

    /// The real OTLP/HTTP exporter over our instrumented HTTP client, with each profile's
    /// retry rules: python's and js's loops in the client, rust's `RetryPolicy` in the
    /// exporter.
    fn build_exporter(
        &self,
        generation: u64,
        semantics: Semantics,
        timeout_ms: u64,
        seed: u64,
    ) -> Result<Exporter, PipelineError> {
        let timeout = Duration::from_millis(timeout_ms);
        let probe = Arc::new(ExportProbe::default());
        let (rules, retry_policy) = match semantics {
            Semantics::Python => (RetryRules::Python, RetryPolicy::disabled()),
            Semantics::Js => (RetryRules::Js, RetryPolicy::disabled()),
            Semantics::Rust | Semantics::Sdk => (RetryRules::Single, RetryPolicy::recommended()),
        };
        let wire = WireClient {
            http: self.http.clone(),
            headers: self.headers.clone(),
            runtime: self.runtime.handle().clone(),
            rules,
            timeout,
            record: self.record.clone(),
            probe: probe.clone(),
            life: self.life.clone(),
            backoff: Sequence::new(seed, Stream::PythonBackoff),
        };
        let otlp = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(self.endpoint.clone())
            .with_timeout(timeout)
            .with_http_client(wire)
            .with_retry_policy(retry_policy)
            .build()
            .map_err(|source| PipelineError::Exporter {
                endpoint: self.endpoint.clone(),
                source,
            })?;
        let exporter = InstrumentedExporter::new(
            otlp,
            self.record.clone(),
            generation,
            probe,
            self.life.clone(),
        );
        Ok(match semantics {
            Semantics::Js => exporter.limiting_concurrency(),
            _ => exporter,
        })
    }

    /// The batch processor the semantics ask for (ours with the python, rust or js rules, or
    /// the stock one, counted from outside), installed in the provider.
    fn build_processor(
        &self,
        builder: opentelemetry_sdk::trace::TracerProviderBuilder,
        semantics: Semantics,
        batch: &BatchSettings,
        exporter: Exporter,
    ) -> (SdkTracerProvider, ProcessorHandle) {
        let schedule_delay = Duration::from_millis(batch.schedule_delay_ms);
        match Profile::of(semantics) {
            Some(profile) => {
                let config = BatchConfig {
                    max_queue_size: batch.max_queue_size,
                    max_export_batch_size: batch.max_export_batch_size,
                    schedule_delay,
                    export_timeout: Duration::from_millis(batch.export_timeout_ms),
                };
                let own = GraceBatchProcessor::new(
                    profile,
                    config,
                    exporter,
                    self.record.clone(),
                    self.life.clone(),
                );
                let provider = builder.with_span_processor(own.clone()).build();
                (provider, ProcessorHandle::Own(own))
            }
            None => {
                let handed = exporter.handed();
                let stock = BatchSpanProcessor::builder(exporter)
                    .with_batch_config(
                        BatchConfigBuilder::default()
                            .with_max_queue_size(batch.max_queue_size)
                            .with_max_export_batch_size(batch.max_export_batch_size)
                            .with_scheduled_delay(schedule_delay)
                            .build(),
                    )
                    .build();
                let counted = CountedStockProcessor::new(
                    stock,
                    batch.max_queue_size,
                    handed,
                    self.record.clone(),
                    self.life.clone(),
                );
                let counts = counted.counts.clone();
                let provider = builder.with_span_processor(counted).build();
                (provider, ProcessorHandle::Stock(counts))
            }
        }
    }
}

fn describe_swap(old: &Settings, new: &Settings) -> String {
    if !new.tracing.enabled {
        return "tracing off".into();
    }
    if !old.tracing.enabled {
        return "tracing on".into();
    }
    format!(
        "new processor: {} queue {} batch {} delay {} ms",
        new.tracing.semantics.name(),
        new.batch.max_queue_size,
        new.batch.max_export_batch_size,
        new.batch.schedule_delay_ms
    )
}
