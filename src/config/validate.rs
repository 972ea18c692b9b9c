//! The collector's faults and limits checked against the knob table's bounds
//! (`collector.<field>`), so that a slider, a scenario file and a `gracetrace collect` flag
//! accept exactly the same values, and a refusal names the field, the value and the range.

use super::knobs::{Bounds, Invalid, find};
use super::{Faults, Limits};

/// A fault out of range: names the knob, the value and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{key} = {value} is out of range: {invalid}")]
pub struct FaultError {
    /// The knob's key, `collector.<field>`.
    pub key: &'static str,
    /// The value refused, as the field holds it.
    pub value: String,
    /// What the knob's bounds allow.
    pub invalid: Invalid,
}

impl FaultError {
    /// The field of [`Faults`] that was refused (`error_rate`).
    pub fn field(&self) -> &'static str {
        self.key.trim_start_matches("collector.")
    }
}

impl Faults {
    /// Checks every field with the knob table's bounds (`collector.<field>`), so that a
    /// slider, a scenario file or a CLI flag out of range is refused with a message naming
    /// the field, the value and the allowed range, instead of producing a backend that
    /// behaves in some unexplained way. `None` is always allowed; `Some` must be in range.
    pub fn validate(&self) -> Result<(), FaultError> {
        int("collector.latency_ms", self.latency_ms)?;
        int("collector.jitter_ms", self.jitter_ms)?;
        let rate = "collector.error_rate";
        bounds(rate)
            .check_float(self.error_rate)
            .map_err(|invalid| refused(rate, self.error_rate, invalid))?;
        int("collector.error_status", u64::from(self.error_status))?;
        if let Some(s) = self.retry_after_s {
            int("collector.retry_after_s", s)?;
        }
        if let Some(l) = self.ingest_limit_spans_per_s {
            int("collector.ingest_limit_spans_per_s", l)?;
        }
        Ok(())
    }
}

impl Limits {
    /// Checks every field with the knob table's bounds (`collector.<field>`).
    pub fn validate(&self) -> Result<(), FaultError> {
        int("collector.max_body_bytes", self.max_body_bytes)?;
        int("collector.max_stored_bytes", self.max_stored_bytes)?;
        int(
            "collector.max_attributes_per_span",
            self.max_attributes_per_span,
        )?;
        int("collector.max_events_per_span", self.max_events_per_span)?;
        int("collector.max_links_per_span", self.max_links_per_span)?;
        int("collector.max_connections", self.max_connections)?;
        int(
            "collector.header_read_timeout_ms",
            self.header_read_timeout_ms,
        )
    }
}

/// The bounds of a fault's knob. Every field of `Faults` has one: a unit test checks it.
fn bounds(key: &'static str) -> &'static Bounds {
    match find(key) {
        Some(knob) => &knob.bounds,
        None => panic!("{key} is missing from the knob table"),
    }
}

fn int(key: &'static str, value: u64) -> Result<(), FaultError> {
    bounds(key)
        .check_int(value)
        .map_err(|invalid| refused(key, value, invalid))
}

fn refused(key: &'static str, value: impl ToString, invalid: Invalid) -> FaultError {
    FaultError {
        key,
        value: value.to_string(),
        invalid,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::knobs::{MAX_INGEST_LIMIT, MAX_LATENCY_MS, MAX_RETRY_AFTER_S};

    #[test]
    fn defaults_are_valid_and_ranges_are_named() {
        assert_eq!(Faults::default().validate(), Ok(()));
        let bad = Faults {
            error_rate: 1.5,
            ..Faults::default()
        };
        let msg = bad.validate().unwrap_err().to_string();
        assert_eq!(
            msg,
            "collector.error_rate = 1.5 is out of range: expected a number from 0 to 1"
        );
        let bad = Faults {
            error_status: 200,
            ..Faults::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.field(), "error_status");
        assert!(err.to_string().contains("from 400 to 599"), "{err}");
        let bad = Faults {
            error_rate: f64::NAN,
            ..Faults::default()
        };
        assert!(bad.validate().is_err());
    }

    /// The faults' bounds are the knob table's: what a scenario refuses, `validate` refuses.
    #[test]
    fn bounds_are_the_knob_tables() {
        let edge = Faults {
            latency_ms: MAX_LATENCY_MS,
            jitter_ms: MAX_LATENCY_MS,
            error_rate: 1.0,
            error_status: 599,
            retry_after_s: Some(MAX_RETRY_AFTER_S),
            ingest_limit_spans_per_s: Some(MAX_INGEST_LIMIT),
            ..Faults::default()
        };
        assert_eq!(edge.validate(), Ok(()));
        let cases = [
            Faults {
                latency_ms: MAX_LATENCY_MS + 1,
                ..Faults::default()
            },
            Faults {
                jitter_ms: MAX_LATENCY_MS + 1,
                ..Faults::default()
            },
            Faults {
                retry_after_s: Some(7200),
                ..Faults::default()
            },
            Faults {
                ingest_limit_spans_per_s: Some(0),
                ..Faults::default()
            },
            Faults {
                ingest_limit_spans_per_s: Some(MAX_INGEST_LIMIT + 1),
                ..Faults::default()
            },
        ];
        for bad in cases {
            let err = bad.validate().unwrap_err();
            let mut settings = crate::config::Settings::default();
            let raw = err.value.clone();
            assert!(
                settings
                    .set(err.key, &raw, crate::config::Source::Default)
                    .is_err()
                    || raw == "0",
                "{err}: the scenario knob accepts it"
            );
        }
    }
}
