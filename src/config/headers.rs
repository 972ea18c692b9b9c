//! Extra HTTP headers sent with every export (`exporter.headers`, from
//! `OTEL_EXPORTER_OTLP_HEADERS` / `OTEL_EXPORTER_OTLP_TRACES_HEADERS`) and every forward
//! (`collector.forward_headers`): how hosted backends are told who is sending
//! (`x-honeycomb-team=KEY`, `Authorization=Basic ...`).
//!
//! The text is the OTLP exporter specification's: `key1=value1,key2=value2`, each key and
//! value percent-decoded and trimmed (the W3C Baggage format without properties).
//!
//! A value is a secret. It is never printed: `Debug` shows the names only, `Serialize`
//! (the JSON report, the window's snapshot) writes the names only, an error names the entry
//! by its position and says what is wrong with it without quoting it, and a saved scenario
//! leaves it out unless the caller asks ([`super::scenario_file::to_toml_with_secrets`]).

use std::fmt;

/// The headers, in the order given; a later entry with the same name replaces an earlier.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

/// Why a header list was refused. Never holds a value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("header entry {position}: {problem} (expected name=value,name2=value2, percent-encoded)")]
pub struct HeaderError {
    /// 1 for the first comma-separated entry.
    pub position: usize,
    pub problem: &'static str,
}

impl Headers {
    /// Parses `name=value,name2=value2`; the empty text is no headers.
    pub fn parse(raw: &str) -> Result<Headers, HeaderError> {
        let mut headers = Headers::default();
        for (i, entry) in raw.split(',').enumerate() {
            let fail = |problem| HeaderError {
                position: i + 1,
                problem,
            };
            if entry.trim().is_empty() {
                if raw.trim().is_empty() {
                    break;
                }
                return Err(fail("empty entry"));
            }
            let (name, value) = entry.split_once('=').ok_or_else(|| fail("no '='"))?;
            let name = percent_decode(name.trim())
                .ok_or_else(|| fail("bad percent-escape in the name"))?;
            let value = percent_decode(value.trim())
                .ok_or_else(|| fail("bad percent-escape in the value"))?;
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(fail("the name is not an HTTP header name"));
            }
            if http::HeaderValue::from_str(&value).is_err() {
                return Err(fail("the value has characters an HTTP header cannot carry"));
            }
            headers.insert(name.to_ascii_lowercase(), value);
        }
        Ok(headers)
    }

    fn insert(&mut self, name: String, value: String) {
        self.entries.retain(|(n, _)| *n != name);
        self.entries.push((name, value));
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names, lowercase, in order: what may be shown.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The headers for a request. Every entry was checked by [`Headers::parse`].
    pub fn to_header_map(&self) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in &self.entries {
            if let (Ok(name), Ok(mut value)) = (
                http::HeaderName::from_bytes(name.as_bytes()),
                http::HeaderValue::from_str(value),
            ) {
                // Keeps the value out of HTTP/2 header compression tables and debug logs.
                value.set_sensitive(true);
                map.insert(name, value);
            }
        }
        map
    }

    /// The text [`Headers::parse`] reads back to the same headers: the knob's value, and
    /// what a scenario saved with secrets holds.
    pub fn to_spec(&self) -> String {
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect();
        entries.join(",")
    }
}

/// Names only: a `{:?}` of the settings must not print a secret.
impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

/// Names only: the report and the window's snapshot carry the settings.
impl serde::Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.names())
    }
}

/// A report read back has the names only, so it has no headers to send.
impl<'de> serde::Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let _names = Vec::<String>::deserialize(deserializer)?;
        Ok(Headers::default())
    }
}

/// `%XX` escapes decoded; `None` for a broken escape or a result that is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Escapes what the list syntax or trimming would change: `%`, `,`, `=`, spaces, controls.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'%' | b',' | b'=' | b' ' | b'\t' | 0..0x20 | 0x7f.. => {
                out.push_str(&format!("%{byte:02X}"));
            }
            _ => out.push(byte as char),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's format, percent-decoding, trimming, and errors that say where
    /// without quoting a value.
    #[test]
    fn parses_the_spec_format_and_never_shows_a_value() {
        let h = Headers::parse(" x-honeycomb-team = s3cr%3Dt ,Authorization=Basic%20YWJj").unwrap();
        assert_eq!(h.names(), ["x-honeycomb-team", "authorization"]);
        let map = h.to_header_map();
        assert_eq!(map["x-honeycomb-team"], "s3cr=t");
        assert_eq!(map["authorization"], "Basic YWJj");
        assert_eq!(Headers::parse(&h.to_spec()).unwrap(), h);
        assert!(Headers::parse("").unwrap().is_empty());
        assert!(Headers::parse("  ").unwrap().is_empty());
        assert_eq!(format!("{h:?}"), r#"["x-honeycomb-team", "authorization"]"#);
        assert_eq!(
            serde_json::to_string(&h).unwrap(),
            r#"["x-honeycomb-team","authorization"]"#
        );
        for (bad, position) in [
            ("a=1,secretvalue", 2),
            ("a=1,,b=2", 2),
            ("a b=1", 1),
            ("a=%zz", 1),
            ("a=%0A", 1),
        ] {
            let error = Headers::parse(bad).unwrap_err();
            assert_eq!(error.position, position, "{bad}");
            assert!(!error.to_string().contains("secretvalue"));
        }
    }
}
