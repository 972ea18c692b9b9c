//! Turning an HTTP request into an `ExportTraceServiceRequest`, or into a short reason why not.
//!
//! Everything here is pure (no locks, no I/O) and never panics on peer input: a garbage body
//! must cost the sender a 4xx, never the collector its life or its counts.

use std::borrow::Cow;
use std::io::Read as _;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderMap, Method, StatusCode, header};

use super::otlp::{self, Caps, Read, ReadError};

use crate::record::wire::{REQUEST_ID_HEADER, RUNNER_HEADER};

/// Longest accepted request id: the ids are kept in a map, so their size must be bounded.
pub const MAX_REQUEST_ID_LEN: usize = 256;

/// Why a request was not accepted. The set is closed so that the counters per reason can be
/// plain atomics (stats are read at 10 Hz from the UI thread and must not take locks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    MethodNotAllowed,
    UnsupportedContentType,
    UnsupportedContentEncoding,
    BadHeader,
    BodyReadError,
    TooLarge,
    Empty,
    BadGzip,
    Undecodable,
    BadId,
    RateLimited,
    /// The body did not arrive whole within `body_read_timeout_ms`.
    TimedOut,
    /// The bodies in flight held `max_inflight_body_bytes` already.
    MemoryLimited,
    /// An error injected by the `error_rate` fault, with its status.
    Injected(u16),
}

impl Reason {
    /// Every reason except `Injected`, in the order of their counters.
    pub(crate) const FIXED: [Reason; 13] = [
        Reason::MethodNotAllowed,
        Reason::UnsupportedContentType,
        Reason::UnsupportedContentEncoding,
        Reason::BadHeader,
        Reason::BodyReadError,
        Reason::TooLarge,
        Reason::Empty,
        Reason::BadGzip,
        Reason::Undecodable,
        Reason::BadId,
        Reason::RateLimited,
        Reason::TimedOut,
        Reason::MemoryLimited,
    ];

    /// The key used in `CollectorStats::rejected_by_reason`.
    pub(crate) fn key(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::UnsupportedContentType => "unsupported_content_type",
            Reason::UnsupportedContentEncoding => "unsupported_content_encoding",
            Reason::BadHeader => "bad_header",
            Reason::BodyReadError => "body_read_error",
            Reason::TooLarge => "too_large",
            Reason::Empty => "empty",
            Reason::BadGzip => "bad_gzip",
            Reason::Undecodable => "undecodable",
            Reason::BadId => "bad_id",
            Reason::RateLimited => "rate_limited",
            Reason::TimedOut => "timed_out",
            Reason::MemoryLimited => "memory_limited",
            Reason::Injected(status) => return Cow::Owned(format!("injected_{status}")),
        })
    }
}

/// A request that gets an error answer: its status, counter, plain-text explanation and
/// optional `Retry-After` seconds.
#[derive(Clone, Debug)]
pub(crate) struct Rejection {
    pub status: StatusCode,
    pub reason: Reason,
    pub text: String,
    pub retry_after_s: Option<u64>,
}

impl Rejection {
    pub(crate) fn new(status: StatusCode, reason: Reason, text: impl Into<String>) -> Self {
        Rejection {
            status,
            reason,
            text: text.into(),
            retry_after_s: None,
        }
    }
}

/// What the headers say about a request, parsed before the body is read so that the runner
/// id is known even when the rest of the request is bad.
#[derive(Debug, Default)]
pub(crate) struct RequestMeta {
    pub runner: Option<u64>,
    pub request_id: Option<String>,
    pub gzip: bool,
    /// OTLP/JSON (`application/json`) rather than protobuf: decoded, and answered, as JSON.
    pub json: bool,
}

/// Parses the headers of an OTLP/HTTP request (see [`check_head_with`]).
pub(crate) fn check_head(parts: &Parts) -> (RequestMeta, Option<Rejection>) {
    check_head_with(parts, http_encoding)
}

/// Parses the headers that matter, the body's encoding (JSON or not, gzip or not) by
/// `encoding`, which differs between OTLP/HTTP and gRPC; the first problem found is
/// returned next to what could be parsed, because a killed runner's bad request must
/// still be dropped, not rejected.
pub(crate) fn check_head_with(
    parts: &Parts,
    encoding: impl FnOnce(&HeaderMap) -> Result<(bool, bool), Rejection>,
) -> (RequestMeta, Option<Rejection>) {
    let headers = &parts.headers;
    // Every check runs (the ids are wanted even from a bad request), in this order, and the
    // first rejection wins: a request is counted under one reason only.
    let mut problem = None;
    let runner = keep_first(runner_header(headers), &mut problem);
    let request_id = keep_first(request_id_header(headers), &mut problem);
    keep_first(check_method(parts), &mut problem);
    let (json, gzip) = keep_first(encoding(headers), &mut problem);
    let meta = RequestMeta {
        runner,
        request_id,
        gzip,
        json,
    };
    (meta, problem)
}

/// An OTLP/HTTP body's encoding from Content-Type and Content-Encoding: (json, gzip).
fn http_encoding(headers: &HeaderMap) -> Result<(bool, bool), Rejection> {
    Ok((check_content_type(headers)?, content_encoding(headers)?))
}

/// What one header check parsed, or its default when it failed; the failure is kept in
/// `problem` unless an earlier check already put one there.
fn keep_first<T: Default>(checked: Result<T, Rejection>, problem: &mut Option<Rejection>) -> T {
    checked.unwrap_or_else(|rejection| {
        problem.get_or_insert(rejection);
        T::default()
    })
}

/// The runner id header, when present: it decides whether a killed runner's request is
/// dropped, so a malformed one is a rejection rather than "no runner".
fn runner_header(headers: &HeaderMap) -> Result<Option<u64>, Rejection> {
    let Some(v) = headers.get(RUNNER_HEADER) else {
        return Ok(None);
    };
    match v.to_str().ok().and_then(|s| s.trim().parse::<u64>().ok()) {
        Some(id) => Ok(Some(id)),
        None => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::BadHeader,
            format!("{RUNNER_HEADER} must be an unsigned 64-bit integer"),
        )),
    }
}

/// The request id header, when present, bounded by `MAX_REQUEST_ID_LEN` because the ids
/// are kept in a map.
fn request_id_header(headers: &HeaderMap) -> Result<Option<String>, Rejection> {
    let Some(v) = headers.get(REQUEST_ID_HEADER) else {
        return Ok(None);
    };
    match v.to_str() {
        Ok(s) if !s.is_empty() && s.len() <= MAX_REQUEST_ID_LEN => Ok(Some(s.to_owned())),
        _ => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::BadHeader,
            format!(
                "{REQUEST_ID_HEADER} must be 1 to {MAX_REQUEST_ID_LEN} visible ASCII characters"
            ),
        )),
    }
}

/// Exports are POSTs, over OTLP/HTTP and gRPC alike; anything else is answered 405.
fn check_method(parts: &Parts) -> Result<(), Rejection> {
    if parts.method == Method::POST {
        return Ok(());
    }
    Err(Rejection::new(
        StatusCode::METHOD_NOT_ALLOWED,
        Reason::MethodNotAllowed,
        format!(
            "method {} not allowed on {}; use POST",
            parts.method,
            parts.uri.path()
        ),
    ))
}

/// The body's encoding, from its Content-Type: binary protobuf or OTLP/JSON, the two
/// that OTLP/HTTP allows. Anything else is answered 415 naming both.
fn check_content_type(headers: &HeaderMap) -> Result<bool, Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("(not text)"));
    let unsupported = |text: String| {
        Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::UnsupportedContentType,
            text,
        ))
    };
    match content_type.map(|ct| ct.split(';').next().unwrap_or("").trim()) {
        Some(ct) if ct.eq_ignore_ascii_case("application/x-protobuf") => Ok(false),
        Some(ct) if ct.eq_ignore_ascii_case("application/json") => Ok(true),
        Some(ct) => unsupported(format!(
            "unsupported Content-Type {ct:?}; send application/x-protobuf or application/json"
        )),
        None => unsupported(
            "missing Content-Type; send application/x-protobuf or application/json".into(),
        ),
    }
}

/// Whether the body is gzipped: gzip and identity are the encodings OTLP/HTTP allows.
fn content_encoding(headers: &HeaderMap) -> Result<bool, Rejection> {
    gzip_or_identity(headers, &header::CONTENT_ENCODING, "Content-Encoding")
}

/// Whether header `name` (shown as `shown`) says gzip; absent or `identity` is not, and
/// anything else is refused: gzip is the one compression the collector reads, over
/// OTLP/HTTP (`Content-Encoding`) and gRPC (`grpc-encoding`) alike.
pub(crate) fn gzip_or_identity(
    headers: &HeaderMap,
    name: &header::HeaderName,
    shown: &str,
) -> Result<bool, Rejection> {
    let Some(v) = headers.get(name) else {
        return Ok(false);
    };
    let enc = v.to_str().unwrap_or("(not text)").trim();
    if enc.eq_ignore_ascii_case("gzip") {
        Ok(true)
    } else if enc.eq_ignore_ascii_case("identity") {
        Ok(false)
    } else {
        Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::UnsupportedContentEncoding,
            format!("unsupported {shown} {enc:?}; send gzip or none"),
        ))
    }
}

/// A request as the store keeps it (see `otlp.rs`), and its number of spans.
#[derive(Debug)]
pub(crate) struct Decoded {
    pub read: Read,
    pub spans: u64,
}

/// Decodes a body in the encoding its headers name (see [`decode_body`] and
/// [`decode_json_body`]).
pub(crate) fn decode(
    body: Bytes,
    meta: &RequestMeta,
    max_body_bytes: usize,
    caps: &Caps,
) -> Result<Decoded, Rejection> {
    if meta.json {
        decode_json_body(body, meta.gzip, max_body_bytes, caps)
    } else {
        decode_body(body, meta.gzip, max_body_bytes, caps)
    }
}

/// The body as sent, gunzipped if asked: never more than `max_body_bytes` of decompressed
/// data (a small gzip bomb must not take the collector's memory), never empty.
fn raw_body(body: Bytes, gzip: bool, max_body_bytes: usize) -> Result<Bytes, Rejection> {
    if body.is_empty() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::Empty,
            "empty body",
        ));
    }
    if gzip {
        gunzip(&body, max_body_bytes)
    } else {
        Ok(body)
    }
}

/// Gunzips (if asked) and reads a protobuf body, never building more of it than the store
/// keeps (`caps`).
pub(crate) fn decode_body(
    body: Bytes,
    gzip: bool,
    max_body_bytes: usize,
    caps: &Caps,
) -> Result<Decoded, Rejection> {
    read(raw_body(body, gzip, max_body_bytes)?, caps)
}

/// Gunzips (if asked) and reads an OTLP/JSON body: parsed whole into the proto types with
/// their own serde mapping (hex ids, 64-bit integers as strings, camelCase names), then
/// encoded as protobuf for the same reader as a protobuf body, so both count and store
/// alike. Unlike protobuf, the whole request is built: its memory is a small multiple of
/// the body, which `max_body_bytes` bounds; serde_json's recursion limit (128) bounds the
/// nesting of values.
pub(crate) fn decode_json_body(
    body: Bytes,
    gzip: bool,
    max_body_bytes: usize,
    caps: &Caps,
) -> Result<Decoded, Rejection> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message as _;
    let raw = raw_body(body, gzip, max_body_bytes)?;
    let request: ExportTraceServiceRequest = serde_json::from_slice(&raw).map_err(|e| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::Undecodable,
            format!("body is not an OTLP/JSON ExportTraceServiceRequest: {e}"),
        )
    })?;
    drop(raw);
    read(Bytes::from(request.encode_to_vec()), caps)
}

/// Reads a protobuf request, mapping the reader's errors to rejections.
fn read(raw: Bytes, caps: &Caps) -> Result<Decoded, Rejection> {
    match otlp::read_request(raw, caps) {
        Ok(read) => {
            let spans = read.ids.len() as u64;
            Ok(Decoded { read, spans })
        }
        Err(ReadError::Proto(e)) => Err(undecodable(e)),
        Err(ReadError::Malformed(what)) => Err(undecodable(what)),
        // Rejected as the OpenTelemetry Collector does: the duplicate and trace counters
        // key on exactly 16-byte trace ids and 8-byte span ids.
        Err(ReadError::BadId {
            index,
            field,
            len,
            want,
        }) => Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::BadId,
            format!("span #{index} has a {field} of {len} bytes (must be {want})"),
        )),
    }
}

pub(crate) fn undecodable(why: impl std::fmt::Display) -> Rejection {
    Rejection::new(
        StatusCode::BAD_REQUEST,
        Reason::Undecodable,
        format!("body is not an ExportTraceServiceRequest: {why}"),
    )
}

/// Gunzips at most `max_body_bytes`; more, an empty result or bad gzip is a rejection.
fn gunzip(body: &[u8], max_body_bytes: usize) -> Result<Bytes, Rejection> {
    let mut out = Vec::new();
    let limit = (max_body_bytes as u64).saturating_add(1);
    if let Err(e) = flate2::read::GzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut out)
    {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::BadGzip,
            format!("body is not valid gzip: {e}"),
        ));
    }
    if out.len() > max_body_bytes {
        return Err(Rejection::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Reason::TooLarge,
            format!("gunzipped body exceeds the limit of {max_body_bytes} bytes"),
        ));
    }
    if out.is_empty() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::Empty,
            "empty body (after gunzip)",
        ));
    }
    Ok(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps {
        bytes: 1 << 20,
        attributes: 128,
        events: 128,
        links: 128,
    };

    fn decode_body(body: &[u8], gzip: bool, max: usize) -> Result<Decoded, Rejection> {
        super::decode_body(Bytes::copy_from_slice(body), gzip, max, &CAPS)
    }

    #[test]
    fn garbage_and_empty_are_reasons_not_panics() {
        assert_eq!(
            decode_body(b"", false, 100).unwrap_err().reason,
            Reason::Empty
        );
        assert_eq!(
            decode_body(&[0xff; 64], false, 100).unwrap_err().reason,
            Reason::Undecodable
        );
        assert_eq!(
            decode_body(b"not gzip", true, 100).unwrap_err().reason,
            Reason::BadGzip
        );
    }

    #[test]
    fn gzip_bomb_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        let zipped = enc.finish().unwrap();
        let err = decode_body(&zipped, true, 1000).unwrap_err();
        assert_eq!(err.reason, Reason::TooLarge);
        assert!(err.text.contains("1000"));
    }

    /// Caps small enough that the seeds go past them.
    const FUZZ_CAPS: Caps = Caps {
        bytes: 2048,
        attributes: 3,
        events: 2,
        links: 1,
    };

    /// The fuzz pass over the decoder (see `config/fuzzing.rs`): no input panics; what is
    /// kept respects every cap; and every request prost decodes whole, with valid ids, is
    /// read with the same spans, in the same order.
    #[test]
    fn fuzz_otlp_decoder() {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

        use crate::config::fuzzing;

        let (read, compared) = (AtomicU64::new(0), AtomicU64::new(0));
        let seeds = fuzzing::mutated(fuzzing::seeds("otlp"));
        fuzzing::run("fuzz_otlp_decoder", seeds, |body| {
            let (was_read, was_compared) = decoder_property(body)?;
            read.fetch_add(u64::from(was_read), Relaxed);
            compared.fetch_add(u64::from(was_compared), Relaxed);
            Ok(())
        });
        println!(
            "fuzz_otlp_decoder: {} inputs read whole, {} of them also decoded by prost and \
             compared",
            read.load(Relaxed),
            compared.load(Relaxed)
        );
    }

    /// The decoder's properties for one input; says whether it was read whole, and whether
    /// prost's reading was compared with it.
    fn decoder_property(
        body: Vec<u8>,
    ) -> Result<(bool, bool), proptest::test_runner::TestCaseError> {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use proptest::prelude::*;
        use prost::Message;

        use crate::collector::otlp::MAX_TEXT;

        let gzip = body.starts_with(&[0x1f, 0x8b]);
        let decoded = super::decode_body(Bytes::from(body.clone()), gzip, 1 << 20, &FUZZ_CAPS);
        let Ok(d) = decoded else {
            return Ok((false, false));
        };
        prop_assert_eq!(d.spans, d.read.ids.len() as u64);
        let mut kept_before_last = 0;
        for (i, (_, span, size)) in d.read.kept.iter().enumerate() {
            prop_assert!(span.attributes.len() <= FUZZ_CAPS.attributes);
            prop_assert!(span.events.len() <= FUZZ_CAPS.events);
            prop_assert!(span.links.len() <= FUZZ_CAPS.links);
            prop_assert!(span.name.len() <= MAX_TEXT);
            for (k, v) in &span.attributes {
                prop_assert!(k.len() <= MAX_TEXT && v.len() <= MAX_TEXT);
            }
            prop_assert_eq!(*size, span.size_bytes());
            if i + 1 < d.read.kept.len() {
                kept_before_last += size;
            }
        }
        // A span is kept only while the request's share of the store is not spent.
        prop_assert!(kept_before_last < FUZZ_CAPS.bytes);
        let Ok(request) = ExportTraceServiceRequest::decode(body.as_slice()) else {
            return Ok((true, false));
        };
        if gzip {
            return Ok((true, false));
        }
        let ids: Vec<[u8; 24]> = request
            .resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .filter(|s| s.trace_id.len() == 16 && s.span_id.len() == 8)
            .map(|s| {
                let mut key = [0u8; 24];
                key[..16].copy_from_slice(&s.trace_id);
                key[16..].copy_from_slice(&s.span_id);
                key
            })
            .collect();
        prop_assert_eq!(&ids, &d.read.ids);
        Ok((true, true))
    }

    /// Every seed decodes as its name says.
    #[test]
    fn the_seeds_are_what_they_say() {
        let seeds = crate::config::fuzzing::seeds("otlp");
        let names = [
            "bad_trace_id",
            "deep_value",
            "empty_resource_spans",
            "many_attributes",
            "three_spans",
            "three_spans.gz",
        ];
        assert_eq!(seeds.len(), names.len());
        let spans: Vec<Result<u64, Reason>> = seeds
            .into_iter()
            .map(|s| {
                let gzip = s.starts_with(&[0x1f, 0x8b]);
                super::decode_body(Bytes::from(s), gzip, 1 << 20, &CAPS)
                    .map(|d| d.spans)
                    .map_err(|r| r.reason)
            })
            .collect();
        assert_eq!(
            spans,
            [Err(Reason::BadId), Ok(1), Ok(0), Ok(1), Ok(3), Ok(3)]
        );
    }
}
