//! `gracetrace probe --fail-if COND`: the conditions a pipeline can refuse a deploy on
//! (`lost_traces>N`, `failed_requests>N`, `killed`), parsed from the user's text and
//! checked against a finished probe's report.

use crate::record::probe::ProbeReport;

/// What `--fail-if` takes, for the error message.
const ALLOWED: &str = "lost_traces>N, failed_requests>N (N a whole number) or killed";

/// A condition that is none of the allowed ones.
#[derive(Debug, thiserror::Error)]
pub enum FailIfError {
    #[error("--fail-if {0}: expected {ALLOWED}")]
    Syntax(String),
    #[error("--fail-if {0}: needs --url (only the probe's own load knows its requests)")]
    NeedsLoad(String),
}

/// One `--fail-if` condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Condition {
    /// More than N answered, sampled requests whose trace never arrived or lacks its root.
    LostTraces(u64),
    /// More than N requests sent that got no answer (failed, or in flight at the end).
    FailedRequests(u64),
    /// The app was SIGKILLed at the end of the grace period.
    Killed,
}

impl Condition {
    /// Parses `text`; `with_load` says whether `--url` was given, which the request
    /// conditions need.
    pub fn parse(text: &str, with_load: bool) -> Result<Condition, FailIfError> {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let syntax = || FailIfError::Syntax(text.to_owned());
        let condition = match compact.split_once('>') {
            None if compact == "killed" => return Ok(Condition::Killed),
            None => return Err(syntax()),
            Some((name, n)) => {
                let n: u64 = n.parse().map_err(|_| syntax())?;
                match name {
                    "lost_traces" => Condition::LostTraces(n),
                    "failed_requests" => Condition::FailedRequests(n),
                    _ => return Err(syntax()),
                }
            }
        };
        match with_load {
            true => Ok(condition),
            false => Err(FailIfError::NeedsLoad(text.to_owned())),
        }
    }

    /// The condition as the user would write it.
    pub fn text(&self) -> String {
        match self {
            Condition::LostTraces(n) => format!("lost_traces>{n}"),
            Condition::FailedRequests(n) => format!("failed_requests>{n}"),
            Condition::Killed => "killed".to_owned(),
        }
    }

    /// When the condition holds for `report`, what made it hold, in words.
    pub fn held(&self, report: &ProbeReport) -> Option<String> {
        match self {
            Condition::LostTraces(n) => {
                let traces = report.traces.as_ref()?;
                // A gate that cannot see the traces must not pass as if none were lost.
                if traces.traceparent_ignored {
                    return Some(format!(
                        "cannot count lost traces: the app's spans carry none of the probe's \
                         trace ids ({} answered sampled requests unknown)",
                        traces.unknown
                    ));
                }
                (traces.lost > *n).then(|| {
                    format!(
                        "{} traces lost of {} answered sampled requests ({} before SIGTERM, {} after)",
                        traces.lost,
                        traces.answered_sampled,
                        traces.lost_before_sigterm,
                        traces.lost_after_sigterm
                    )
                })
            }
            Condition::FailedRequests(n) => {
                let load = report.load.as_ref()?;
                let failed = load.failed_requests();
                (failed > *n)
                    .then(|| format!("{failed} of {} requests sent got no answer", load.sent))
            }
            Condition::Killed => report.probe.killed.then(|| {
                format!(
                    "the app was SIGKILLed after a {} ms grace",
                    report.probe.grace_ms
                )
            }),
        }
    }
}

/// The first condition that holds, as the one line `probe` prints before exiting 3.
pub fn first_held(conditions: &[Condition], report: &ProbeReport) -> Option<String> {
    conditions.iter().find_map(|c| {
        c.held(report)
            .map(|why| format!("--fail-if {} held: {why}", c.text()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::load::TraceSection;

    #[test]
    fn conditions_parse_and_hold() {
        assert_eq!(
            Condition::parse("lost_traces > 0", true).unwrap(),
            Condition::LostTraces(0)
        );
        assert_eq!(
            Condition::parse("failed_requests>5", true).unwrap(),
            Condition::FailedRequests(5)
        );
        assert_eq!(
            Condition::parse("killed", false).unwrap(),
            Condition::Killed
        );
        for bad in [
            "lost_traces>-1",
            "lost_traces>=1",
            "spans>0",
            "",
            "killed>1",
        ] {
            let err = Condition::parse(bad, true).unwrap_err().to_string();
            assert_eq!(err, format!("--fail-if {bad}: expected {ALLOWED}"));
        }
        let err = Condition::parse("lost_traces>0", false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs --url"), "{err}");
        let mut report = ProbeReport {
            traces: Some(TraceSection {
                lost: 2,
                answered_sampled: 10,
                ..TraceSection::default()
            }),
            ..ProbeReport::default()
        };
        let conditions = [Condition::Killed, Condition::LostTraces(1)];
        let line = first_held(&conditions, &report).unwrap();
        assert!(
            line.starts_with("--fail-if lost_traces>1 held: 2 traces lost of 10"),
            "{line}"
        );
        assert_eq!(first_held(&[Condition::LostTraces(2)], &report), None);
        report.probe.killed = true;
        assert!(
            first_held(&conditions, &report)
                .unwrap()
                .starts_with("--fail-if killed held")
        );
    }

    /// An app whose spans carry none of the probe's trace ids: `lost_traces>N` cannot be
    /// counted, and the gate holds (saying why) instead of passing on 0 lost.
    #[test]
    fn a_gate_on_lost_traces_holds_when_the_traces_cannot_be_followed() {
        let report = ProbeReport {
            traces: Some(TraceSection {
                unknown: 7,
                traceparent_ignored: true,
                ..TraceSection::default()
            }),
            ..ProbeReport::default()
        };
        let line = first_held(&[Condition::LostTraces(5)], &report).unwrap();
        assert!(
            line.starts_with("--fail-if lost_traces>5 held: cannot count lost traces"),
            "{line}"
        );
        assert!(
            line.contains("7 answered sampled requests unknown"),
            "{line}"
        );
    }
}
