//! The `[fleet]` section: how many replicas serve the scenario's traffic, how a deploy
//! replaces them (all at once, or in waves of `max_unavailable`), how long a replacement
//! takes to start, and the ingestion limit of the one backend they share. Virtual time
//! only: a real run is one runner.

use serde::{Deserialize, Serialize};

/// Most replicas in a fleet: a large deployment, and the most rows a report holds.
pub const MAX_REPLICAS: u64 = 10_000;

/// A fleet asked of a real run: the fleet is virtual-time only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "fleet.replicas = {replicas} runs in virtual time only (--clock virtual); a real run is \
     one runner, so set fleet.replicas = 1 for it"
)]
pub struct FleetIsVirtualOnly {
    pub replicas: usize,
}

/// How a deploy replaces the replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rollout {
    /// Every replica gets SIGTERM at `shutdown.at_s`.
    AllAtOnce,
    /// `max_unavailable` replicas at a time, a wave every `wave_interval_s`.
    Waves,
}

impl Rollout {
    pub const ALL: [Rollout; 2] = [Rollout::AllAtOnce, Rollout::Waves];

    /// The value's name in scenario files and the report.
    pub fn name(self) -> &'static str {
        match self {
            Rollout::AllAtOnce => "all_at_once",
            Rollout::Waves => "waves",
        }
    }
}

/// How many replicas one wave takes out of service: a count, or a share of the fleet,
/// rounded up so that a share never makes a wave of none.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxUnavailable {
    Count(u64),
    /// Percent of the replicas, above 0 and at most 100.
    Share(f64),
}

impl MaxUnavailable {
    /// Replicas per wave in a fleet of `replicas`: at least one, at most all.
    pub fn per_wave(self, replicas: usize) -> usize {
        let n = match self {
            MaxUnavailable::Count(n) => usize::try_from(n).unwrap_or(usize::MAX),
            MaxUnavailable::Share(percent) => (replicas as f64 * percent / 100.0).ceil() as usize,
        };
        n.clamp(1, replicas.max(1))
    }

    /// As the knob takes it: `5` or `25%`.
    pub fn text(self) -> String {
        match self {
            MaxUnavailable::Count(n) => n.to_string(),
            MaxUnavailable::Share(percent) => format!("{percent}%"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FleetSettings {
    /// Replicas serving the traffic at once; 1 is the single runner.
    pub replicas: usize,
    pub rollout: Rollout,
    pub max_unavailable: MaxUnavailable,
    /// Seconds from one wave's SIGTERM to the next one's.
    pub wave_interval_s: f64,
    /// Seconds from a replica's SIGTERM until its replacement takes traffic (never before
    /// the platform stops routing to the replica it replaces).
    pub startup_s: f64,
    /// Spans per second the one backend of the whole fleet ingests before answering 429;
    /// `None`: no limit.
    pub backend_ingest_limit_spans_per_s: Option<u64>,
}

impl Default for FleetSettings {
    fn default() -> Self {
        FleetSettings {
            replicas: 1,
            rollout: Rollout::AllAtOnce,
            max_unavailable: MaxUnavailable::Share(25.0),
            wave_interval_s: 60.0,
            startup_s: 30.0,
            backend_ingest_limit_spans_per_s: None,
        }
    }
}

impl FleetSettings {
    /// Refuses a fleet for a real run, which is one runner.
    pub fn check_real_time(&self) -> Result<(), FleetIsVirtualOnly> {
        match self.replicas {
            0 | 1 => Ok(()),
            replicas => Err(FleetIsVirtualOnly { replicas }),
        }
    }

    /// Replicas SIGTERMed per wave: `max_unavailable` of them, or all when the rollout
    /// is all at once.
    pub fn per_wave(&self) -> usize {
        match self.rollout {
            Rollout::AllAtOnce => self.replicas.max(1),
            Rollout::Waves => self.max_unavailable.per_wave(self.replicas),
        }
    }

    /// The wave replica `replica` (from 0) is SIGTERMed in: replicas go in order,
    /// [`FleetSettings::per_wave`] at a time.
    pub fn wave_of(&self, replica: usize) -> usize {
        replica / self.per_wave()
    }

    /// How many waves the deploy takes.
    pub fn waves(&self) -> usize {
        self.wave_of(self.replicas.max(1) - 1) + 1
    }

    /// When wave `wave` gets SIGTERM, seconds from the start of traffic, when the deploy
    /// starts at `first_s`: one interval after the wave before, whether or not that
    /// wave's replacements are ready yet.
    pub fn wave_at_s(&self, first_s: f64, wave: usize) -> f64 {
        first_s + wave as f64 * self.wave_interval_s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waves_take_max_unavailable_in_order_a_share_rounded_up() {
        let waves = |replicas, max_unavailable| FleetSettings {
            replicas,
            rollout: Rollout::Waves,
            max_unavailable,
            ..FleetSettings::default()
        };
        let f = waves(40, MaxUnavailable::Share(25.0));
        assert_eq!((f.max_unavailable.per_wave(40), f.waves()), (10, 4));
        assert_eq!((f.wave_of(9), f.wave_of(10), f.wave_of(39)), (0, 1, 3));
        assert_eq!(
            waves(10, MaxUnavailable::Share(1.0)).waves(),
            10,
            "1% of 10 is 1"
        );
        assert_eq!(waves(10, MaxUnavailable::Count(3)).waves(), 4);
        assert_eq!(
            waves(10, MaxUnavailable::Count(50)).waves(),
            1,
            "at most all"
        );
        let at_once = FleetSettings {
            replicas: 40,
            ..FleetSettings::default()
        };
        assert_eq!((at_once.waves(), at_once.wave_of(39)), (1, 0));
        assert_eq!((at_once.per_wave(), f.per_wave()), (40, 10));
        assert_eq!(f.wave_at_s(600.0, 3), 600.0 + 3.0 * 60.0);
        assert!(f.check_real_time().is_err());
        assert!(FleetSettings::default().check_real_time().is_ok());
    }
}
