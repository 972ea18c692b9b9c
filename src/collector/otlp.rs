//! Reading an `ExportTraceServiceRequest` field by field, building only what the store
//! keeps: every span's ids (for the counts), and, until the store's byte budget is spent,
//! spans rendered as the waterfall shows them, with at most so many attributes, events
//! and links each. Everything else is skipped on the wire, not decoded: one request of
//! 16 MB holding 8 million empty attributes, or 8 million empty `ResourceSpans`, costs
//! the collector a few hundred bytes, not hundreds of megabytes of decoded messages.
//!
//! What is skipped is checked for framing only (lengths and wire types), so a malformed
//! value inside a field the collector never reads (a resource attribute, a span's status)
//! is not noticed; what is read is checked as prost checks it (wire types, UTF-8, id
//! lengths). The field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`
//! and `common/v1/common.proto`, as compiled into opentelemetry-proto 0.33.1.

use bytes::{Buf, Bytes};
use prost::DecodeError;
use prost::encoding::{DecodeContext, WireType, check_wire_type, decode_key, decode_varint};

use super::stored::{StoredEvent, StoredLink, StoredSpan};
use crate::record::AppResource;

/// Longest text kept for one attribute value, key, name or id; the rest is cut and the
/// cut counted. A prompt or a URL fits; a 16 MB value does not pin 16 MB of store.
pub const MAX_TEXT: usize = 4096;
/// Deepest nesting of array and kvlist values rendered; deeper ones show as `…`.
const MAX_VALUE_DEPTH: usize = 8;

/// How much of a request the store may keep.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    /// Bytes of spans kept from one request: the store's whole budget, since a request's
    /// spans beyond it would only push each other out.
    pub bytes: u64,
    pub attributes: usize,
    pub events: usize,
    pub links: usize,
}

/// What a request held that the store does not keep, for `/stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NotStored {
    /// Whole spans (over the byte budget, or past a trace's span limit).
    pub spans: u64,
    /// Attributes past the cap, on stored spans and on their stored events and links.
    pub attributes: u64,
    /// Events past the cap, on stored spans.
    pub events: u64,
    /// Links past the cap, on stored spans.
    pub links: u64,
    /// Texts (values, keys, names) cut at [`MAX_TEXT`].
    pub texts_cut: u64,
}

/// A request as the collector keeps it.
#[derive(Debug, Default)]
pub(crate) struct Read {
    /// Every span's trace id then span id, in order: what the counts key on.
    pub ids: Vec<[u8; 24]>,
    /// Spans the store may keep, with their trace id and their size in bytes.
    pub kept: Vec<([u8; 16], StoredSpan, u64)>,
    pub not_stored: NotStored,
    /// The trace ids of root spans (no parent), one per root: a trace whose children
    /// arrive without its root is an orphan (the root was lost).
    pub roots: Vec<[u8; 16]>,
    /// What the first resource of the request says about the app (`gracetrace probe`).
    pub resource: Option<AppResource>,
    kept_bytes: u64,
}

/// Why a body could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Not protobuf, or not this message.
    Proto(DecodeError),
    /// A length past the end of its message, or a string that is not UTF-8.
    Malformed(&'static str),
    /// Span number `index` has an id of the wrong length (`want` bytes).
    BadId {
        index: usize,
        field: &'static str,
        len: usize,
        want: &'static str,
    },
}

impl From<DecodeError> for ReadError {
    fn from(e: DecodeError) -> Self {
        ReadError::Proto(e)
    }
}

type Result<T> = std::result::Result<T, ReadError>;

/// Reads a whole request.
pub(crate) fn read_request(body: Bytes, caps: &Caps) -> Result<Read> {
    let mut read = Read::default();
    fields(body, |tag, wire, buf| match tag {
        1 => resource_spans(message(wire, buf)?, caps, &mut read),
        _ => skip(tag, wire, buf),
    })?;
    Ok(read)
}

fn resource_spans(buf: Bytes, caps: &Caps, read: &mut Read) -> Result<()> {
    fields(buf, |tag, wire, buf| match tag {
        1 if read.resource.is_none() => {
            read.resource = Some(resource(message(wire, buf)?)?);
            Ok(())
        }
        2 => scope_spans(message(wire, buf)?, caps, read),
        _ => skip(tag, wire, buf),
    })
}

/// The three resource attributes that say which app and SDK sent the spans; the others
/// are framed and skipped. Values are bounded by [`MAX_TEXT`] like every kept text.
fn resource(buf: Bytes) -> Result<AppResource> {
    let mut r = AppResource::default();
    let mut uncounted = NotStored::default();
    fields(buf, |tag, wire, buf| match tag {
        1 => {
            let (key, value) = key_value(message(wire, buf)?, &mut uncounted)?;
            match key.as_str() {
                "service.name" => r.service_name = Some(value),
                "telemetry.sdk.language" => r.sdk_language = Some(value),
                "telemetry.sdk.version" => r.sdk_version = Some(value),
                _ => {}
            }
            Ok(())
        }
        _ => skip(tag, wire, buf),
    })?;
    Ok(r)
}

fn scope_spans(buf: Bytes, caps: &Caps, read: &mut Read) -> Result<()> {
    fields(buf, |tag, wire, buf| match tag {
        2 => span(message(wire, buf)?, caps, read),
        _ => skip(tag, wire, buf),
    })
}

/// One span: its ids always; the rest only while the request's share of the store lasts.
fn span(buf: Bytes, caps: &Caps, read: &mut Read) -> Result<()> {
    let index = read.ids.len();
    let keep = read.kept_bytes < caps.bytes;
    let (mut trace_id, mut span_id, mut parent) = (Bytes::new(), Bytes::new(), Bytes::new());
    let mut s = StoredSpan::default();
    let n = &mut read.not_stored;
    fields(buf, |tag, wire, buf| {
        match tag {
            1 => trace_id = message(wire, buf)?,
            2 => span_id = message(wire, buf)?,
            4 => parent = message(wire, buf)?,
            5 if keep => s.name = text(message(wire, buf)?, n)?,
            7 if keep => s.start_unix_nano = fixed64(wire, buf)?,
            8 if keep => s.end_unix_nano = fixed64(wire, buf)?,
            9 if keep && s.attributes.len() < caps.attributes => {
                s.attributes.push(key_value(message(wire, buf)?, n)?)
            }
            11 if keep && s.events.len() < caps.events => {
                s.events.push(event(message(wire, buf)?, caps, n)?)
            }
            13 if keep && s.links.len() < caps.links => {
                s.links.push(link(message(wire, buf)?, caps, n)?)
            }
            9 | 11 | 13 if keep => {
                skip(tag, wire, buf)?;
                let counter = match tag {
                    9 => &mut n.attributes,
                    11 => &mut n.events,
                    _ => &mut n.links,
                };
                *counter += 1;
            }
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })?;
    let (trace_id, span_id) = check_ids(index, &trace_id, &span_id, &parent)?;
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&trace_id);
    key[16..].copy_from_slice(&span_id);
    read.ids.push(key);
    if is_root(&trace_id, &parent) {
        read.roots.push(trace_id);
    }
    if !keep {
        read.not_stored.spans += 1;
        return Ok(());
    }
    s.span_id = hex(&span_id);
    s.parent_span_id = (!parent.is_empty()).then(|| hex(&parent));
    let size = s.size_bytes();
    read.kept_bytes = read.kept_bytes.saturating_add(size);
    read.kept.push((trace_id, s, size));
    Ok(())
}

/// Whether a span is its trace's root: it has no parent, or its parent is the span id
/// `gracetrace probe` sent in the request's `traceparent` (the app's top span under the
/// probe's load; see [`crate::record::wire::probe_parent_span_id`]).
fn is_root(trace_id: &[u8; 16], parent: &[u8]) -> bool {
    let Ok(parent) = <[u8; 8]>::try_from(parent) else {
        return parent.is_empty();
    };
    let id = u128::from_be_bytes(*trace_id);
    u64::from_be_bytes(parent) == crate::record::wire::probe_parent_span_id(id)
}

/// The ids' lengths, as the OpenTelemetry Collector checks them: the counts key on
/// exactly 16-byte trace ids and 8-byte span ids.
fn check_ids(
    index: usize,
    trace_id: &[u8],
    span_id: &[u8],
    parent: &[u8],
) -> Result<([u8; 16], [u8; 8])> {
    let bad = |field, len, want| ReadError::BadId {
        index,
        field,
        len,
        want,
    };
    let trace: [u8; 16] = trace_id
        .try_into()
        .map_err(|_| bad("trace_id", trace_id.len(), "16"))?;
    let span: [u8; 8] = span_id
        .try_into()
        .map_err(|_| bad("span_id", span_id.len(), "8"))?;
    if !matches!(parent.len(), 0 | 8) {
        return Err(bad("parent_span_id", parent.len(), "0 or 8"));
    }
    Ok((trace, span))
}

fn event(buf: Bytes, caps: &Caps, n: &mut NotStored) -> Result<StoredEvent> {
    let mut e = StoredEvent::default();
    fields(buf, |tag, wire, buf| {
        match tag {
            1 => e.time_unix_nano = fixed64(wire, buf)?,
            2 => e.name = text(message(wire, buf)?, n)?,
            3 if e.attributes.len() < caps.attributes => {
                e.attributes.push(key_value(message(wire, buf)?, n)?)
            }
            3 => {
                skip(tag, wire, buf)?;
                n.attributes += 1;
            }
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })?;
    Ok(e)
}

fn link(buf: Bytes, caps: &Caps, n: &mut NotStored) -> Result<StoredLink> {
    let mut l = StoredLink::default();
    fields(buf, |tag, wire, buf| {
        match tag {
            1 => l.trace_id = hex_text(&message(wire, buf)?, n),
            2 => l.span_id = hex_text(&message(wire, buf)?, n),
            4 if l.attributes.len() < caps.attributes => {
                l.attributes.push(key_value(message(wire, buf)?, n)?)
            }
            4 => {
                skip(tag, wire, buf)?;
                n.attributes += 1;
            }
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })?;
    Ok(l)
}

/// A `KeyValue` as `(key, value as text)`.
fn key_value(buf: Bytes, n: &mut NotStored) -> Result<(String, String)> {
    let (mut key, mut value) = (String::new(), Text::new());
    fields(buf, |tag, wire, buf| {
        match tag {
            1 => key = text(message(wire, buf)?, n)?,
            2 => {
                value = Text::new();
                any_value(message(wire, buf)?, 0, &mut value)?;
            }
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })?;
    if value.cut {
        n.texts_cut += 1;
    }
    value.s.shrink_to_fit();
    Ok((key, value.s))
}

/// Text of at most [`MAX_TEXT`] bytes, cut at a character boundary.
struct Text {
    s: String,
    cut: bool,
}

impl Text {
    fn new() -> Self {
        Text {
            s: String::new(),
            cut: false,
        }
    }

    fn push(&mut self, t: &str) {
        let room = MAX_TEXT.saturating_sub(self.s.len());
        if t.len() <= room {
            self.s.push_str(t);
            return;
        }
        let mut end = room;
        while !t.is_char_boundary(end) {
            end -= 1;
        }
        self.s.push_str(&t[..end]);
        self.cut = true;
    }

    fn full(&self) -> bool {
        self.cut || self.s.len() >= MAX_TEXT
    }
}

/// Renders an `AnyValue` as the waterfall shows it (strings as they are, bytes in hex,
/// arrays `[a, b]`, kvlists `{k: v}`), never past [`MAX_TEXT`] nor [`MAX_VALUE_DEPTH`].
/// Only the last field of the `oneof` counts, as in prost.
fn any_value(buf: Bytes, depth: usize, out: &mut Text) -> Result<()> {
    let start = out.s.len();
    fields(buf, |tag, wire, buf| {
        out.s.truncate(start);
        match tag {
            1 => out.push(utf8(&message(wire, buf)?)?),
            2 => out.push(if varint(wire, buf)? != 0 {
                "true"
            } else {
                "false"
            }),
            // int64 is a varint read as two's complement, as prost reads it.
            3 => out.push(&(varint(wire, buf)? as i64).to_string()),
            4 => out.push(&f64::from_bits(fixed64(wire, buf)?).to_string()),
            5 | 6 if depth >= MAX_VALUE_DEPTH => {
                message(wire, buf)?;
                out.push("…");
            }
            5 => list(message(wire, buf)?, depth, out, "[", "]", any_value)?,
            6 => list(message(wire, buf)?, depth, out, "{", "}", key_value_text)?,
            7 => {
                // One byte more than fits, so that `push` notices the cut.
                let bytes = message(wire, buf)?;
                out.push(&hex(&bytes[..bytes.len().min(MAX_TEXT / 2 + 1)]));
            }
            // int32, read from a varint and truncated, as prost reads it.
            8 => out.push(&format!("(string table #{})", varint(wire, buf)? as i32)),
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })
}

/// An array's values or a kvlist's entries (field 1 of each), between `open` and `close`.
fn list(
    buf: Bytes,
    depth: usize,
    out: &mut Text,
    open: &str,
    close: &str,
    item: fn(Bytes, usize, &mut Text) -> Result<()>,
) -> Result<()> {
    out.push(open);
    let mut first = true;
    fields(buf, |tag, wire, buf| {
        if tag != 1 || out.full() {
            // Past the text limit the rest is only framed, not rendered.
            return skip(tag, wire, buf);
        }
        if !first {
            out.push(", ");
        }
        first = false;
        item(message(wire, buf)?, depth + 1, out)
    })?;
    out.push(close);
    Ok(())
}

/// A kvlist entry as `key: value`.
fn key_value_text(buf: Bytes, depth: usize, out: &mut Text) -> Result<()> {
    let start = out.s.len();
    let mut value = None;
    fields(buf, |tag, wire, buf| {
        match tag {
            1 => {
                out.s.truncate(start);
                out.push(utf8(&message(wire, buf)?)?);
            }
            2 => value = Some(message(wire, buf)?),
            _ => skip(tag, wire, buf)?,
        }
        Ok(())
    })?;
    out.push(": ");
    match value {
        Some(v) => any_value(v, depth, out),
        None => Ok(()),
    }
}

/// Calls `each(tag, wire type, rest)` for every field of a message, in order.
fn fields(
    mut buf: Bytes,
    mut each: impl FnMut(u32, WireType, &mut Bytes) -> Result<()>,
) -> Result<()> {
    while buf.has_remaining() {
        let (tag, wire) = decode_key(&mut buf)?;
        each(tag, wire, &mut buf)?;
    }
    Ok(())
}

/// Skips a field, checking only its framing.
fn skip(tag: u32, wire: WireType, buf: &mut Bytes) -> Result<()> {
    Ok(prost::encoding::skip_field(
        wire,
        tag,
        buf,
        DecodeContext::default(),
    )?)
}

/// A length-delimited field's bytes, without copying them.
fn message(wire: WireType, buf: &mut Bytes) -> Result<Bytes> {
    check_wire_type(WireType::LengthDelimited, wire)?;
    let len = decode_varint(buf)?;
    match usize::try_from(len) {
        Ok(len) if len <= buf.remaining() => Ok(buf.split_to(len)),
        _ => Err(ReadError::Malformed("buffer underflow")),
    }
}

fn varint(wire: WireType, buf: &mut Bytes) -> Result<u64> {
    check_wire_type(WireType::Varint, wire)?;
    Ok(decode_varint(buf)?)
}

fn fixed64(wire: WireType, buf: &mut Bytes) -> Result<u64> {
    check_wire_type(WireType::SixtyFourBit, wire)?;
    if buf.remaining() < 8 {
        return Err(ReadError::Malformed("buffer underflow"));
    }
    Ok(buf.get_u64_le())
}

fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes)
        .map_err(|_| ReadError::Malformed("invalid string value: data is not UTF-8 encoded"))
}

/// A string field as kept: checked as UTF-8 whole, kept up to [`MAX_TEXT`].
fn text(bytes: Bytes, n: &mut NotStored) -> Result<String> {
    let mut t = Text::new();
    t.push(utf8(&bytes)?);
    if t.cut {
        n.texts_cut += 1;
    }
    t.s.shrink_to_fit();
    Ok(t.s)
}

/// Id bytes as hex, up to [`MAX_TEXT`] characters.
fn hex_text(bytes: &[u8], n: &mut NotStored) -> String {
    if bytes.len() > MAX_TEXT / 2 {
        n.texts_cut += 1;
    }
    hex(&bytes[..bytes.len().min(MAX_TEXT / 2)])
}

/// Lowercase hex, as every tracing backend shows ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
