//! Why the telemetry of a runner could not start, change or flush; each error names what
//! failed.

/// The pipeline of a runner could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The exporter's HTTP runtime's threads could not be created.
    #[error("cannot start the exporter's HTTP runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The HTTP client could not be built (its TLS or resolver could not start).
    #[error("cannot build the HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The CA file for an https endpoint could not be used (the message names it).
    #[error(transparent)]
    Tls(#[from] crate::config::tls::TlsError),
    /// `opentelemetry-otlp` refused the endpoint or the settings.
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        /// The `/v1/traces` URL the exporter was given.
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// What `force_flush` returned when it did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum FlushError {
    /// The processor had already shut down (python's `force_flush` then returns False).
    #[error("the processor was already shut down")]
    AlreadyShutDown,
    /// The SDK's own `force_flush` failed or timed out (rust, sdk).
    #[error("{0}")]
    Sdk(#[from] opentelemetry_sdk::error::OTelSdkError),
}
