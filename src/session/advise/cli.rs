//! `gracetrace advise`: loads the scenario, calibrates the virtual clock once, runs the
//! advisor and prints each recommendation with the simulated runs it came from.

use std::path::PathBuf;
use std::process::ExitCode;

use super::Advisor;
use super::render::render;
use crate::config::{Settings, env};
use crate::session::virtual_clock::calibrate;

/// Find the settings that lose no span for a scenario, by simulated runs.
#[derive(Clone, Debug, clap::Args)]
pub struct AdviseArgs {
    /// Scenario TOML (see assets/scenarios/); without it, defaults and environment.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Override one knob, `key=value` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// What the tracing backend charges per million spans ingested; each option's cost is
    /// shown at it.
    #[arg(long, value_name = "PRICE", value_parser = price)]
    pub price_per_million: Option<f64>,
    /// Arrival seeds per probe (`workload.seed`, +1, ...); a setting counts as losing
    /// nothing only if every seed's run loses nothing.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub seeds: u16,
}

fn price(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!(
            "{raw:?} is not a price: expected a number from 0 up"
        )),
    }
}

pub fn advise_command(args: AdviseArgs) -> ExitCode {
    let base = Settings::load(&env::process_env, args.scenario.as_deref(), &args.overrides);
    let base = match base.map_err(|e| e.to_string()).and_then(|s| {
        crate::sim::check(&s).map_err(|e| e.to_string())?;
        Ok(s)
    }) {
        Ok(base) => base,
        Err(line) => {
            eprintln!("gracetrace: {line}");
            return ExitCode::from(2);
        }
    };
    eprintln!("advise: calibrating the virtual clock (a 1.5 s real run)");
    let advice = calibrate().map_err(|e| e.to_string()).and_then(|costs| {
        let advisor = Advisor::new(&base, costs, usize::from(args.seeds));
        advisor.and_then(|a| a.run()).map_err(|e| e.to_string())
    });
    match advice {
        Ok(advice) => {
            print!("{}", render(&advice, args.price_per_million));
            ExitCode::SUCCESS
        }
        Err(line) => {
            eprintln!("gracetrace: {line}");
            ExitCode::FAILURE
        }
    }
}
