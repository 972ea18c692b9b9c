//! The advisor's search: the boundary of "this value loses nothing" over one knob's
//! values, found by galloping from the scenario's value and then bisecting, each value
//! probed by simulated runs at most once, every probe kept so an answer can cite them.

use std::collections::BTreeMap;

use super::{AdviseError, Probe, Summary};

/// The values searched, as whole indices `lo..=hi` and how an index is written as the
/// knob's value; `start` is the scenario's own.
#[derive(Clone, Copy, Debug)]
pub struct Domain {
    lo: u64,
    hi: u64,
    start: u64,
    hundredths: bool,
}

impl Domain {
    pub fn whole(lo: u64, hi: u64, start: u64) -> Domain {
        Domain {
            lo,
            hi,
            start: start.clamp(lo, hi),
            hundredths: false,
        }
    }

    /// A rate from 0 to `max / 100`, in steps of 0.01.
    pub fn hundredths(max: u64) -> Domain {
        Domain {
            lo: 0,
            hi: max,
            start: max,
            hundredths: true,
        }
    }

    fn value(&self, index: u64) -> String {
        if self.hundredths {
            format!("{}", index as f64 / 100.0)
        } else {
            index.to_string()
        }
    }
}

/// Which end of the values that lose nothing is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Losing nothing gets easier as the value grows (a queue size).
    Smallest,
    /// Losing nothing gets harder as the value grows (a delay, a timeout, a rate).
    Largest,
}

/// One knob's search: what it found and the probes it made, in order.
#[derive(Clone, Debug)]
pub struct Search {
    pub key: &'static str,
    /// The value that loses nothing, nearest the wanted end; `None` if none did.
    pub found: Option<String>,
    pub probes: Vec<Probe>,
    /// Another setting the search ran on top of (`batch.max_queue_size=..`).
    pub context: Option<(&'static str, String)>,
}

impl Search {
    /// The probe of the value found, or, when nothing worked, the one that lost least.
    pub fn chosen(&self) -> Option<&Probe> {
        match &self.found {
            Some(value) => self
                .probes
                .iter()
                .find(|p| p.change.iter().any(|(_, v)| v == value)),
            None => self.probes.iter().min_by_key(|p| p.worst.lost_at_kill),
        }
    }

    /// A one-probe "search" (a choice knob set to one value).
    pub fn single(key: &'static str, probe: Probe, ok: &dyn Fn(&Summary) -> bool) -> Search {
        let found = ok(&probe.worst).then(|| {
            probe
                .change
                .first()
                .map_or_else(String::new, |c| c.1.clone())
        });
        Search {
            key,
            found,
            probes: vec![probe],
            context: None,
        }
    }

    pub fn with_context(mut self, key: &'static str, value: &str) -> Search {
        self.context = Some((key, value.to_string()));
        self
    }

    /// Searches `domain` for the wanted end of the values whose probe passes `ok`,
    /// assuming the values that pass are one contiguous end of the range.
    pub fn run(
        key: &'static str,
        domain: Domain,
        want: Want,
        ok: &dyn Fn(&Summary) -> bool,
        probe: &mut dyn FnMut(&str) -> Result<Probe, AdviseError>,
    ) -> Result<Search, AdviseError> {
        let mut tried: BTreeMap<u64, bool> = BTreeMap::new();
        let mut probes = Vec::new();
        // "Flipped" is monotone from false to true along the indices.
        let mut flipped = |index: u64| -> Result<bool, AdviseError> {
            if let Some(&f) = tried.get(&index) {
                return Ok(f);
            }
            let p = probe(&domain.value(index))?;
            let f = ok(&p.worst) == (want == Want::Smallest);
            probes.push(p);
            tried.insert(index, f);
            Ok(f)
        };
        let first = first_flipped(domain, &mut flipped)?;
        let found = match (want, first) {
            (Want::Smallest, first) => first,
            (Want::Largest, None) => Some(domain.hi),
            (Want::Largest, Some(first)) if first > domain.lo => Some(first - 1),
            (Want::Largest, Some(_)) => None,
        };
        Ok(Search {
            key,
            found: found.map(|i| domain.value(i)),
            probes,
            context: None,
        })
    }
}

/// The first index where `flipped` holds (it holds from there to `hi`), or `None`:
/// gallop up from `start` while it does not hold, then bisect.
fn first_flipped(
    d: Domain,
    flipped: &mut dyn FnMut(u64) -> Result<bool, AdviseError>,
) -> Result<Option<u64>, AdviseError> {
    let (mut lo, mut hi) = (d.lo, d.start);
    if !flipped(d.start)? {
        // Gallop: double the distance until it holds or the range ends.
        lo = d.start;
        let mut step = d.start.max(1);
        loop {
            let next = lo.saturating_add(step).min(d.hi);
            if next == lo {
                return Ok(None);
            }
            if flipped(next)? {
                hi = next;
                break;
            }
            lo = next;
            step = step.saturating_mul(2);
        }
    } else if flipped(d.lo)? {
        return Ok(Some(d.lo));
    }
    // Invariant: not flipped at lo, flipped at hi.
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if flipped(mid)? { hi = mid } else { lo = mid }
    }
    Ok(Some(hi))
}

#[cfg(test)]
mod tests {
    use super::super::ProbeRun;
    use super::*;

    /// A probe whose "drops" are `max(0, threshold - value)`, so values from `threshold`
    /// up lose nothing.
    fn probe_for(threshold: u64) -> impl FnMut(&str) -> Result<Probe, AdviseError> {
        move |value| {
            let v: u64 = value.parse().unwrap();
            let worst = Summary {
                dropped_queue_full: threshold.saturating_sub(v),
                ..Summary::default()
            };
            Ok(Probe {
                change: vec![("batch.max_queue_size", value.into())],
                runs: vec![ProbeRun {
                    seed: 1,
                    cost_scale: 1.0,
                    summary: worst,
                }],
                worst,
            })
        }
    }

    fn no_drop(s: &Summary) -> bool {
        s.dropped_queue_full == 0
    }

    #[test]
    fn the_smallest_passing_value_is_found_from_either_side() {
        for (start, threshold) in [(2048, 2731), (2048, 700), (1, 1), (5, 10_000_001)] {
            let d = Domain::whole(1, 10_000_000, start);
            let s = Search::run("q", d, Want::Smallest, &no_drop, &mut probe_for(threshold));
            let s = s.unwrap();
            let expected = (threshold <= 10_000_000).then(|| threshold.to_string());
            assert_eq!(s.found, expected, "start {start}, threshold {threshold}");
            // Each value probed once, and a bisection's worth of probes, not a scan.
            let mut values: Vec<&str> = s.probes.iter().map(|p| p.change[0].1.as_str()).collect();
            let n = values.len();
            values.sort();
            values.dedup();
            assert_eq!(values.len(), n);
            assert!(n <= 50, "{n} probes");
        }
    }

    #[test]
    fn the_largest_passing_value_and_none_when_nothing_passes() {
        // Values up to 300 pass ("drops" grow past it).
        let mut probe = |value: &str| {
            let v: u64 = value.parse().unwrap();
            let worst = Summary {
                lost_at_kill: v.saturating_sub(300),
                ..Summary::default()
            };
            Ok(Probe {
                change: vec![("batch.schedule_delay_ms", value.into())],
                runs: vec![ProbeRun {
                    seed: 1,
                    cost_scale: 1.0,
                    summary: worst,
                }],
                worst,
            })
        };
        let saved = |s: &Summary| s.lost_at_kill == 0;
        let d = Domain::whole(1, 5000, 5000);
        let s = Search::run("d", d, Want::Largest, &saved, &mut probe).unwrap();
        assert_eq!(s.found.as_deref(), Some("300"));
        assert_eq!(s.chosen().unwrap().change[0].1, "300");
        let d = Domain::whole(400, 5000, 5000);
        let s = Search::run("d", d, Want::Largest, &saved, &mut probe).unwrap();
        assert_eq!(s.found, None);
        // Nothing passed: the probe that lost least stands in.
        assert_eq!(s.chosen().unwrap().change[0].1, "400");
        let d = Domain::whole(1, 200, 100);
        let s = Search::run("d", d, Want::Largest, &saved, &mut probe).unwrap();
        assert_eq!(s.found.as_deref(), Some("200"));
    }
}
