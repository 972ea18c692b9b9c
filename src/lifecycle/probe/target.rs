//! Where `gracetrace probe --url` sends its load and how: the URL, method, body, extra
//! headers, readiness check and timeouts, each checked from the user's text with an error
//! that names the flag, the value and what is allowed.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

/// Most a `--ready-timeout-s` or `--timeout-s` may be: an hour, like every other time in
/// the settings.
pub const MAX_TIMEOUT_S: f64 = 3600.0;

/// Why an input of the load was refused; each names the flag and the value.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--url {0}: expected http://host:port/path (plain HTTP, a host, optionally a port)")]
    Url(String),
    #[error("--method {0}: expected GET or POST")]
    Method(String),
    #[error("--header {0:?}: expected 'Name: value' with a valid HTTP header name and value")]
    Header(String),
    #[error("--body {path}: cannot read it: {source}")]
    Body {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("--ready-path {0}: expected a path starting with /")]
    ReadyPath(String),
    #[error("{0}: needs --url (the load it describes is sent only to a URL)")]
    NeedsUrl(&'static str),
    #[error("{flag} {value}: expected seconds, more than 0 and at most {MAX_TIMEOUT_S}")]
    Seconds { flag: &'static str, value: f64 },
}

/// An `http://host:port/path` URL, split as a client needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetUrl {
    /// As the user wrote it.
    pub text: String,
    pub host: String,
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl TargetUrl {
    /// Plain HTTP only (no TLS client is built in); the port defaults to 80, the path to `/`.
    pub fn parse(text: &str) -> Result<TargetUrl, TargetError> {
        let bad = || TargetError::Url(text.to_owned());
        let uri: http::Uri = text.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") {
            return Err(bad());
        }
        let authority = uri.authority().ok_or_else(bad)?;
        let host = authority.host().trim_matches(['[', ']']);
        if host.is_empty() || authority.as_str().contains('@') {
            return Err(bad());
        }
        let port = match authority.port_u16() {
            Some(0) => return Err(bad()),
            Some(port) => port,
            None if authority.as_str().ends_with(':') => return Err(bad()),
            None => 80,
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        Ok(TargetUrl {
            text: text.to_owned(),
            host: host.to_owned(),
            port,
            path: if path.is_empty() { "/" } else { path }.to_owned(),
        })
    }

    /// The `Host` header's value: the authority as written.
    pub fn authority(&self) -> String {
        match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        }
    }
}

/// Everything the load needs besides the schedule.
#[derive(Clone, Debug)]
pub struct LoadTarget {
    pub url: TargetUrl,
    pub method: Method,
    pub body: Bytes,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Ready when this path answers 2xx; `None`: when the port takes a TCP connection.
    pub ready_path: Option<String>,
    pub ready_timeout: Duration,
    /// A request without a whole response by then is a `timeout`.
    pub request_timeout: Duration,
}

/// The flags as given, before they are checked.
#[derive(Clone, Debug, Default)]
pub struct TargetText<'a> {
    pub url: &'a str,
    pub method: Option<&'a str>,
    pub body_file: Option<&'a std::path::Path>,
    pub headers: &'a [String],
    pub ready_path: Option<&'a str>,
    pub ready_timeout_s: Option<f64>,
    pub timeout_s: Option<f64>,
}

/// How long readiness and a request may take unless told.
const DEFAULT_READY_TIMEOUT_S: f64 = 30.0;
const DEFAULT_REQUEST_TIMEOUT_S: f64 = 30.0;

impl LoadTarget {
    /// Checks every flag (and reads the body file) before anything starts.
    pub fn from_text(t: &TargetText) -> Result<LoadTarget, TargetError> {
        let method = match t.method.map(str::to_ascii_uppercase).as_deref() {
            None | Some("GET") => Method::GET,
            Some("POST") => Method::POST,
            Some(_) => return Err(TargetError::Method(t.method.unwrap_or_default().into())),
        };
        let body = match t.body_file {
            None => Bytes::new(),
            Some(path) => {
                std::fs::read(path)
                    .map(Bytes::from)
                    .map_err(|source| TargetError::Body {
                        path: path.display().to_string(),
                        source,
                    })?
            }
        };
        let headers = t
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<_, _>>()?;
        if let Some(path) = t.ready_path
            && (!path.starts_with('/') || path.parse::<http::uri::PathAndQuery>().is_err())
        {
            return Err(TargetError::ReadyPath(path.to_owned()));
        }
        Ok(LoadTarget {
            url: TargetUrl::parse(t.url)?,
            method,
            body,
            headers,
            ready_path: t.ready_path.map(str::to_owned),
            ready_timeout: seconds(
                "--ready-timeout-s",
                t.ready_timeout_s,
                DEFAULT_READY_TIMEOUT_S,
            )?,
            request_timeout: seconds("--timeout-s", t.timeout_s, DEFAULT_REQUEST_TIMEOUT_S)?,
        })
    }
}

fn seconds(flag: &'static str, value: Option<f64>, default: f64) -> Result<Duration, TargetError> {
    let value = value.unwrap_or(default);
    match value.is_finite() && value > 0.0 && value <= MAX_TIMEOUT_S {
        true => Ok(Duration::from_secs_f64(value)),
        false => Err(TargetError::Seconds { flag, value }),
    }
}

/// `Name: value`, split at the first colon, both sides trimmed, as curl's `-H` takes it.
pub fn parse_header(text: &str) -> Result<(HeaderName, HeaderValue), TargetError> {
    let bad = || TargetError::Header(text.to_owned());
    let (name, value) = text.split_once(':').ok_or_else(bad)?;
    let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| bad())?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| bad())?;
    Ok((name, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_http_only_with_a_host() {
        let url = TargetUrl::parse("http://127.0.0.1:8080/generate?x=1").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 8080));
        assert_eq!(url.path, "/generate?x=1");
        let bare = TargetUrl::parse("http://localhost").unwrap();
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        assert_eq!(
            TargetUrl::parse("http://[::1]:9/").unwrap().authority(),
            "[::1]:9"
        );
        for bad in [
            "https://a:1/",
            "a:1/x",
            "http://:80/",
            "http://a:0/",
            "http://a:/",
            "",
            "http://u@a:1/",
        ] {
            let err = TargetUrl::parse(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--url {bad}: expected http://")),
                "{err}"
            );
        }
    }

    #[test]
    fn headers_methods_paths_and_times_are_checked() {
        let (name, value) = parse_header("X-Api-Key:  secret ").unwrap();
        assert_eq!(
            (name.as_str(), value.to_str().unwrap()),
            ("x-api-key", "secret")
        );
        assert!(
            parse_header("no colon")
                .unwrap_err()
                .to_string()
                .contains("'Name: value'")
        );
        assert!(parse_header("bad name: v").is_err());
        let text = |f: &dyn Fn(&mut TargetText)| {
            let mut t = TargetText {
                url: "http://127.0.0.1:1/",
                ..TargetText::default()
            };
            f(&mut t);
            LoadTarget::from_text(&t)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(text(&|_| ()), Ok(()));
        assert!(
            text(&|t| t.method = Some("PUT"))
                .unwrap_err()
                .starts_with("--method PUT")
        );
        assert!(
            text(&|t| t.ready_path = Some("health"))
                .unwrap_err()
                .starts_with("--ready-path health")
        );
        assert!(
            text(&|t| t.timeout_s = Some(0.0))
                .unwrap_err()
                .starts_with("--timeout-s 0")
        );
        let missing = std::path::Path::new("/no/such/gracetrace-body");
        let err = text(&|t| t.body_file = Some(missing)).unwrap_err();
        assert!(
            err.starts_with("--body /no/such/gracetrace-body: cannot read it"),
            "{err}"
        );
    }
}
