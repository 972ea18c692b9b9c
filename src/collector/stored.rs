//! The spans the collector keeps for the waterfall view, as plain values: a trace, its
//! spans, their events and links, and the bytes each holds (what the store's budget
//! counts). The OTLP reader (`otlp`) builds them and the store (`store`) keeps them; they
//! live in a file of their own so that neither has to name the other for them.

use serde::Serialize;

/// One trace of the recent-trace store, for the UI's waterfall view.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoredTrace {
    /// 32 lowercase hex digits, as the UI and every tracing backend show it.
    pub trace_id: String,
    /// Ordered by start time, so a waterfall can draw them top to bottom.
    pub spans: Vec<StoredSpan>,
}

/// One span of a stored trace, with everything a waterfall row needs and nothing more.
/// Texts are cut at `MAX_TEXT` bytes; attributes, events and links at the collector's
/// limits (what was not stored is counted in `/stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoredSpan {
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// `None` for a root span, so the UI can find the roots without parsing ids.
    pub parent_span_id: Option<String>,
    /// The span's name, the label of its waterfall row.
    pub name: String,
    /// Start and end as sent (Unix nanoseconds): the bar's extent on the shared time axis.
    pub start_unix_nano: u64,
    /// See `start_unix_nano`.
    pub end_unix_nano: u64,
    /// Values rendered as text: the UI only displays them.
    pub attributes: Vec<(String, String)>,
    /// The span's events (a model request has one per denoising step).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<StoredEvent>,
    /// The span's links.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<StoredLink>,
}

/// One event of a stored span.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoredEvent {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<(String, String)>,
}

/// One link of a stored span, ids in hex.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoredLink {
    pub trace_id: String,
    pub span_id: String,
    pub attributes: Vec<(String, String)>,
}

/// Heap and inline bytes of attributes: what the store's budget counts for each.
fn attributes_bytes(attributes: &[(String, String)]) -> u64 {
    let each = std::mem::size_of::<(String, String)>();
    attributes
        .iter()
        .map(|(k, v)| (each + k.capacity() + v.capacity()) as u64)
        .sum()
}

impl StoredSpan {
    /// The bytes this span holds, as the store's budget counts them: the struct, its
    /// texts, and its attributes', events' and links' keys and values.
    pub fn size_bytes(&self) -> u64 {
        let events: u64 = self
            .events
            .iter()
            .map(|e| {
                (std::mem::size_of::<StoredEvent>() + e.name.capacity()) as u64
                    + attributes_bytes(&e.attributes)
            })
            .sum();
        let links: u64 = self
            .links
            .iter()
            .map(|l| {
                (std::mem::size_of::<StoredLink>() + l.trace_id.capacity() + l.span_id.capacity())
                    as u64
                    + attributes_bytes(&l.attributes)
            })
            .sum();
        let texts = self.span_id.capacity()
            + self.parent_span_id.as_ref().map_or(0, String::capacity)
            + self.name.capacity();
        (std::mem::size_of::<StoredSpan>() + texts) as u64
            + attributes_bytes(&self.attributes)
            + events
            + links
    }
}
