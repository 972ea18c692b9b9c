//! https for the exporter (`exporter.endpoint`) and the forward (`collector.forward`):
//! rustls with the `ring` provider (why not aws-lc-rs: Cargo.toml), the system's roots
//! through rustls-platform-verifier, and a private CA from a PEM file
//! (`exporter.ca_file` / `OTEL_EXPORTER_OTLP_CERTIFICATE`, `collector.forward_ca_file`)
//! added to them.
//!
//! The CA file is read and parsed when the knob is set, so an unreadable file or one
//! without a certificate is refused where it was written (exit 2, naming the variable or
//! key), not at the first export.

use std::path::{Path, PathBuf};

use reqwest::Certificate;

/// Why a CA file cannot be used; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the CA file {}: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("the CA file {} holds no PEM CERTIFICATE", path.display())]
    NoCertificate { path: PathBuf },
}

/// The certificates in a PEM file (one or more `BEGIN CERTIFICATE` blocks).
pub fn read_ca_file(path: &Path) -> Result<Vec<Certificate>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let certificates = Certificate::from_pem_bundle(&pem).map_err(|e| TlsError::Unreadable {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// A client builder that speaks https with the system's roots and, when given, the CA
/// file's certificates too. The caller adds its own timeouts and pool settings.
pub fn client_builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, TlsError> {
    // reqwest is built without a provider of its own (`rustls-no-provider`): it takes the
    // process default, which is ring's. Installing twice is refused and harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let builder = reqwest::Client::builder().tls_backend_rustls();
    Ok(match ca_file {
        Some(path) => builder.tls_certs_merge(read_ca_file(path)?),
        None => builder,
    })
}

/// A request error with every cause, so that a certificate problem reads as one ("...:
/// invalid peer certificate: UnknownIssuer") rather than reqwest's bare "error sending
/// request". reqwest keeps the URL's userinfo out of its text, and no header is in it.
pub fn error_text(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        let line = inner.to_string();
        if !text.ends_with(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = inner.source();
    }
    text
}

/// Whether the error is the server's certificate being refused: not worth a retry, since
/// the next attempt meets the same certificate.
pub fn is_certificate_error(error: &reqwest::Error) -> bool {
    // The rustls error can sit inside an io::Error inside boxed connector errors, where a
    // downcast may not reach it; rustls's own text for it is the fallback.
    if error_text(error).contains("invalid peer certificate") {
        return true;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(inner) = cause {
        if let Some(rustls::Error::InvalidCertificate(_)) = inner.downcast_ref::<rustls::Error>() {
            return true;
        }
        if let Some(io) = inner.downcast_ref::<std::io::Error>()
            && let Some(rustls::Error::InvalidCertificate(_)) =
                io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return true;
        }
        cause = inner.source();
    }
    false
}
