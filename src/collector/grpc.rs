//! OTLP/gRPC intake: the unary call `TraceService/Export` over HTTP/2 in plaintext (h2c,
//! prior knowledge: what the Python gRPC exporter's insecure channel speaks), read,
//! decided and counted by the same path as OTLP/HTTP (`routes::intake`), and answered
//! with a gRPC status.
//!
//! The wire format is gRPC's own (PROTOCOL-HTTP2.md in grpc/grpc): a request body holds
//! length-prefixed messages (one byte "compressed", a big-endian u32 length, the
//! message); a unary call carries exactly one. The answer is HTTP 200 with the status in
//! trailers (`grpc-status`, `grpc-message`), or, for an error, in the only HEADERS frame
//! ("trailers-only"). Everything the peer sends is checked before use: a malformed frame
//! is INVALID_ARGUMENT, never a panic.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use base64::Engine as _;
use bytes::{Buf as _, Bytes};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, StatusCode};
use http_body_util::{BodyExt as _, Full};
use prost::Message as _;

use super::Shared;
use super::decode::{self, Reason, Rejection};
use super::forward::Batch;
use super::framing::FramingCheck;
use super::routes;
use super::store::Verdict;

/// The method's path: package, service and method of opentelemetry-proto's
/// `collector/trace/v1/trace_service.proto`.
pub const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

const GRPC_CONTENT_TYPE: &str = "application/grpc";
const GRPC_STATUS: &str = "grpc-status";
const GRPC_MESSAGE: &str = "grpc-message";
const GRPC_ENCODING: &str = "grpc-encoding";
const GRPC_ACCEPT_ENCODING: &str = "grpc-accept-encoding";
/// `RetryInfo`, where the Python exporter 1.41.0 reads it: the trailing metadata key
/// `google.rpc.retryinfo-bin` (opentelemetry/exporter/otlp/proto/grpc/exporter.py,
/// lines 428-439, in `_export`).
const RETRY_INFO: &str = "google.rpc.retryinfo-bin";
/// `RetryInfo` where the OTLP specification puts it (otlp.md, "OTLP/gRPC Throttling"):
/// a detail of the `google.rpc.Status` that gRPC carries in this trailer, read by the Go
/// and Java exporters.
const STATUS_DETAILS: &str = "grpc-status-details-bin";
const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";
/// The length prefix of a message: the compressed flag and a big-endian u32.
const PREFIX: usize = 5;

/// The gRPC status codes the collector answers (grpc/grpc doc/statuscodes.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Code {
    Ok = 0,
    Unknown = 2,
    InvalidArgument = 3,
    DeadlineExceeded = 4,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    Unimplemented = 12,
    Unavailable = 14,
    Unauthenticated = 16,
}

/// The routes of the gRPC listener: `Export`, and UNIMPLEMENTED for any other method.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(EXPORT_PATH, any(export))
        .fallback(unknown_method)
        .with_state(shared)
}

async fn export(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let grpc = &shared.store.counters.requests_grpc;
    grpc.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (meta, head_problem) = decode::check_head_with(&parts, grpc_encoding);
    let check = if head_problem.is_some() {
        FramingCheck::off()
    } else {
        FramingCheck::grpc()
    };
    let verdict = routes::intake(&shared, &meta, head_problem, (body, check), |framed| {
        let (compressed, message) = unframe(framed, meta.gzip)?;
        // Forwarded over OTLP/HTTP: gRPC's gzip is a gzip stream, a valid Content-Encoding.
        let batch = Batch {
            body: message.clone(),
            content_type: Some(HeaderValue::from_static("application/x-protobuf")),
            content_encoding: compressed.then(|| HeaderValue::from_static("gzip")),
            spans: 0,
        };
        let decoded =
            decode::decode_body(message, compressed, shared.max_body_bytes, &shared.caps)?;
        Ok((decoded, batch))
    })
    .await;
    respond(verdict)
}

async fn unknown_method(req: Request) -> Response {
    let text = format!(
        "unknown method {}; this collector serves {EXPORT_PATH}",
        req.uri().path()
    );
    trailers_only(Code::Unimplemented, &text, None)
}

/// A gRPC head's encoding: never JSON; gzip when `grpc-encoding` says so. The
/// Content-Type must be gRPC's (with `+proto` or none); the message codec is protobuf.
fn grpc_encoding(headers: &HeaderMap) -> Result<(bool, bool), Rejection> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map_or("(none)", |v| v.to_str().unwrap_or("(not text)"));
    let codec = content_type.split(';').next().unwrap_or("").trim();
    if !["application/grpc", "application/grpc+proto"]
        .iter()
        .any(|ok| codec.eq_ignore_ascii_case(ok))
    {
        return Err(Rejection::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Reason::UnsupportedContentType,
            format!("unsupported Content-Type {codec:?}; send application/grpc"),
        ));
    }
    let gzip = decode::gzip_or_identity(
        headers,
        &HeaderName::from_static(GRPC_ENCODING),
        GRPC_ENCODING,
    )?;
    Ok((false, gzip))
}

/// The one message of a unary call's body, and whether it is compressed (with the
/// call's `grpc-encoding`, which must then be gzip).
fn unframe(mut body: Bytes, gzip: bool) -> Result<(bool, Bytes), Rejection> {
    let malformed = |why: String| {
        Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::Undecodable,
            format!("body is not one gRPC message: {why}"),
        )
    };
    if body.is_empty() {
        return Err(Rejection::new(
            StatusCode::BAD_REQUEST,
            Reason::Empty,
            "no message: a unary call carries one",
        ));
    }
    if body.len() < PREFIX {
        let why = format!("{} bytes, shorter than the 5-byte prefix", body.len());
        return Err(malformed(why));
    }
    let compressed = body.get_u8();
    let len = u64::from(body.get_u32());
    let compressed = match compressed {
        0 => false,
        1 if gzip => true,
        1 => {
            return Err(malformed(
                "compressed, but grpc-encoding names no gzip".into(),
            ));
        }
        flag => {
            return Err(malformed(format!(
                "compressed flag {flag} (must be 0 or 1)"
            )));
        }
    };
    let have = body.len() as u64;
    if have < len {
        return Err(malformed(format!("a {len}-byte message cut off at {have}")));
    }
    if have > len {
        let extra = have - len;
        return Err(malformed(format!(
            "{extra} bytes after the {len}-byte message"
        )));
    }
    Ok((compressed, body))
}

/// The answer to an export's verdict. A wrong method or Content-Type is answered as plain
/// HTTP (405, 415), as PROTOCOL-HTTP2.md asks of a request that is not gRPC at all.
fn respond(verdict: Verdict) -> Response {
    match verdict {
        Verdict::Accepted => ok(&routes::accepted_message()),
        Verdict::DroppedKilledRunner(runner) => trailers_only(
            Code::Unavailable,
            &format!("runner {runner} was killed; request dropped uncounted"),
            None,
        ),
        Verdict::Rejected(r)
            if matches!(
                r.reason,
                Reason::MethodNotAllowed | Reason::UnsupportedContentType
            ) =>
        {
            routes::text(r.status, r.text, None)
        }
        Verdict::Rejected(r) => trailers_only(code_for(&r), &r.text, r.retry_after_s),
    }
}

/// A rejection's gRPC code. Bad input is INVALID_ARGUMENT, as the OTLP specification
/// asks of data the server cannot accept (otlp.md, "Failures"); a body over the limit is
/// RESOURCE_EXHAUSTED, as gRPC servers answer a message past their receive limit; an
/// unknown `grpc-encoding` is UNIMPLEMENTED (PROTOCOL-HTTP2.md); the ingestion quota is
/// RESOURCE_EXHAUSTED with `RetryInfo`, retryable under the specification, and so is the
/// in-flight memory budget, as gRPC servers answer memory pressure; a body that did not
/// arrive in time is DEADLINE_EXCEEDED.
fn code_for(rejection: &Rejection) -> Code {
    match rejection.reason {
        Reason::TooLarge | Reason::RateLimited | Reason::MemoryLimited => Code::ResourceExhausted,
        Reason::TimedOut => Code::DeadlineExceeded,
        Reason::UnsupportedContentEncoding => Code::Unimplemented,
        Reason::Injected(status) => code_for_status(status),
        _ => Code::InvalidArgument,
    }
}

/// An injected HTTP error status as a gRPC code: gRPC's own table
/// (grpc/grpc doc/http-grpc-status-mapping.md: 401, 403, 404, 502, 503 and 504, anything
/// else UNKNOWN), except 400 (INVALID_ARGUMENT, as above), 408 (DEADLINE_EXCEEDED) and
/// 413 and 429 (RESOURCE_EXHAUSTED: a limit or a quota). So what OTLP/HTTP retries (429,
/// 502, 503, 504) maps to codes the Python gRPC exporter retries (its
/// `_RETRYABLE_ERROR_CODES`, exporter.py lines 110-120: UNAVAILABLE and
/// RESOURCE_EXHAUSTED among them).
fn code_for_status(status: u16) -> Code {
    match status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        408 => Code::DeadlineExceeded,
        413 | 429 => Code::ResourceExhausted,
        502..=504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Success: the framed response message, then the OK status in trailers.
fn ok(message: &[u8]) -> Response {
    let mut framed = Vec::with_capacity(PREFIX + message.len());
    framed.push(0);
    // A response message is a few bytes; `u32::MAX` is never reached.
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(message);
    let mut trailers = HeaderMap::new();
    status_headers(&mut trailers, Code::Ok, "", None);
    let body = Full::new(Bytes::from(framed)).with_trailers(async move { Some(Ok(trailers)) });
    let mut resp = Response::new(Body::new(body));
    grpc_headers(resp.headers_mut());
    resp
}

/// An error: the status in the answer's only HEADERS frame, which clients read as the
/// call's trailers.
fn trailers_only(code: Code, message: &str, retry_after_s: Option<u64>) -> Response {
    let mut resp = Response::new(Body::empty());
    let headers = resp.headers_mut();
    grpc_headers(headers);
    status_headers(headers, code, message, retry_after_s);
    resp
}

fn grpc_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(GRPC_CONTENT_TYPE),
    );
    headers.insert(GRPC_ACCEPT_ENCODING, HeaderValue::from_static("gzip"));
}

/// `grpc-status`, `grpc-message` (percent-encoded) and, with a `Retry-After` the HTTP
/// path would send, the same delay as `RetryInfo`.
fn status_headers(headers: &mut HeaderMap, code: Code, message: &str, retry_after_s: Option<u64>) {
    headers.insert(GRPC_STATUS, HeaderValue::from(code as u16));
    if !message.is_empty()
        && let Ok(value) = HeaderValue::try_from(percent_encode(message))
    {
        headers.insert(GRPC_MESSAGE, value);
    }
    let Some(seconds) = retry_after_s else {
        return;
    };
    let retry_info = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
            nanos: 0,
        }),
    }
    .encode_to_vec();
    let status = RpcStatus {
        code: code as i32,
        message: message.to_owned(),
        details: vec![ProtoAny {
            type_url: RETRY_INFO_TYPE.to_owned(),
            value: retry_info.clone(),
        }],
    }
    .encode_to_vec();
    for (name, bytes) in [(RETRY_INFO, retry_info), (STATUS_DETAILS, status)] {
        // Binary metadata is base64, sent unpadded (PROTOCOL-HTTP2.md).
        let encoded = base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes);
        if let Ok(value) = HeaderValue::try_from(encoded) {
            headers.insert(name, value);
        }
    }
}

/// `grpc-message`'s encoding (PROTOCOL-HTTP2.md): printable ASCII but `%` as is, every
/// other byte of the UTF-8 text as `%XX`.
fn percent_encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoDuration {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `google.rpc.RetryInfo` (google/rpc/error_details.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoAny {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
}

/// `google.rpc.Status` (google/rpc/status.proto).
#[derive(Clone, PartialEq, prost::Message)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
    #[prost(message, repeated, tag = "3")]
    details: Vec<ProtoAny>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(flag: u8, len: u32, message: &[u8]) -> Bytes {
        let mut v = vec![flag];
        v.extend_from_slice(&len.to_be_bytes());
        v.extend_from_slice(message);
        Bytes::from(v)
    }

    /// One whole message passes; every other shape is a reason, never a panic.
    #[test]
    fn unframe_takes_exactly_one_message() {
        assert_eq!(
            unframe(frame(0, 3, b"abc"), false).unwrap(),
            (false, Bytes::from_static(b"abc"))
        );
        assert_eq!(
            unframe(frame(1, 2, b"gz"), true).unwrap(),
            (true, Bytes::from_static(b"gz"))
        );
        // Uncompressed is allowed whatever grpc-encoding says.
        assert!(!unframe(frame(0, 1, b"x"), true).unwrap().0);
        let cases: [(Bytes, Reason, &str); 6] = [
            (Bytes::new(), Reason::Empty, "no message"),
            (
                Bytes::from_static(&[0, 0, 0]),
                Reason::Undecodable,
                "3 bytes",
            ),
            (frame(2, 1, b"x"), Reason::Undecodable, "flag 2"),
            (frame(1, 1, b"x"), Reason::Undecodable, "names no gzip"),
            (frame(0, 9, b"abc"), Reason::Undecodable, "cut off at 3"),
            (frame(0, 1, b"abc"), Reason::Undecodable, "2 bytes after"),
        ];
        for (body, reason, says) in cases {
            let r = unframe(body, false).unwrap_err();
            assert_eq!(r.reason, reason, "{}", r.text);
            assert!(r.text.contains(says), "{}", r.text);
            assert_eq!(code_for(&r), Code::InvalidArgument);
        }
    }

    /// Retryable HTTP statuses map to codes the Python exporter retries, bad input to
    /// INVALID_ARGUMENT.
    #[test]
    fn statuses_map_to_grpc_codes() {
        let expected = [
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::Unimplemented),
            (408, Code::DeadlineExceeded),
            (413, Code::ResourceExhausted),
            (429, Code::ResourceExhausted),
            (500, Code::Unknown),
            (502, Code::Unavailable),
            (503, Code::Unavailable),
            (504, Code::Unavailable),
            (599, Code::Unknown),
        ];
        for (status, code) in expected {
            assert_eq!(code_for_status(status), code, "{status}");
        }
        let rate = Rejection::new(StatusCode::TOO_MANY_REQUESTS, Reason::RateLimited, "");
        assert_eq!(code_for(&rate), Code::ResourceExhausted);
        let memory = Rejection::new(StatusCode::SERVICE_UNAVAILABLE, Reason::MemoryLimited, "");
        assert_eq!(code_for(&memory), Code::ResourceExhausted);
        let late = Rejection::new(StatusCode::REQUEST_TIMEOUT, Reason::TimedOut, "");
        assert_eq!(code_for(&late), Code::DeadlineExceeded);
    }

    #[test]
    fn grpc_message_is_percent_encoded() {
        assert_eq!(percent_encode("plain text: ok"), "plain text: ok");
        assert_eq!(percent_encode("50% é\n"), "50%25 %C3%A9%0A");
    }

    /// The retry delay reaches both trailers, each decodable as its message.
    #[test]
    fn retry_after_becomes_retry_info() {
        let mut headers = HeaderMap::new();
        status_headers(&mut headers, Code::Unavailable, "busy", Some(3));
        assert_eq!(headers[GRPC_STATUS], "14");
        assert_eq!(headers[GRPC_MESSAGE], "busy");
        let decode = |name: &str| {
            let text = headers[name].to_str().unwrap();
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .unwrap()
        };
        let info = RetryInfo::decode(decode(RETRY_INFO).as_slice()).unwrap();
        assert_eq!(info.retry_delay.map(|d| d.seconds), Some(3));
        let status = RpcStatus::decode(decode(STATUS_DETAILS).as_slice()).unwrap();
        assert_eq!(status.code, 14);
        assert_eq!(status.details[0].type_url, RETRY_INFO_TYPE);
        assert_eq!(status.details[0].value, decode(RETRY_INFO));

        let mut plain = HeaderMap::new();
        status_headers(&mut plain, Code::Ok, "", None);
        assert_eq!(plain.len(), 1, "{plain:?}");
    }
}
