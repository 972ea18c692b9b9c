//! `gracetrace advise`: loads the scenario, calibrates the virtual clock once, runs the
//! advisor and prints each recommendation with the simulated runs it came from.

use std::process::ExitCode;

use super::{CliError, ScenarioArgs};
use crate::session::advise::Advisor;
use crate::session::advise::render::render;
use crate::session::virtual_clock::{calibrate_for, model_workload};

/// The highest price per million spans taken: far above any vendor's list price, and low
/// enough that a month of a busy fleet's spans stays a finite number of dollars.
const MAX_PRICE: f64 = 1_000_000.0;

/// Find the settings that lose no span for a scenario, by simulated runs.
#[derive(Clone, Debug, clap::Args)]
pub struct AdviseArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// What the tracing backend charges per million spans ingested (0 to 1000000 dollars);
    /// each option's cost is shown at it.
    #[arg(long, value_name = "PRICE", value_parser = price)]
    pub price_per_million: Option<f64>,
    /// Arrival seeds per probe (`workload.seed`, +1, ...); a setting counts as losing
    /// nothing only if every seed's run loses nothing.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=100))]
    pub seeds: u16,
}

/// A `--price-per-million` that is not a price.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a price: expected a number from 0 to {MAX_PRICE}")]
pub struct PriceError(String);

fn price(raw: &str) -> Result<f64, PriceError> {
    match raw.trim().parse::<f64>() {
        Ok(p) if (0.0..=MAX_PRICE).contains(&p) => Ok(p),
        _ => Err(PriceError(raw.to_owned())),
    }
}

pub fn advise(args: AdviseArgs) -> Result<ExitCode, CliError> {
    let base = args.scenario.settings()?;
    crate::sim::check(&base).map_err(CliError::input)?;
    eprintln!("advise: calibrating the virtual clock (a 1.5 s real run)");
    let model = model_workload(&base);
    let calibration = calibrate_for(model).map_err(CliError::failed)?;
    let advisor =
        Advisor::new(&base, calibration, usize::from(args.seeds)).map_err(CliError::failed)?;
    let advice = advisor.run().map_err(CliError::failed)?;
    print!("{}", render(&advice, args.price_per_million));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_price_is_a_finite_number_in_range() {
        assert_eq!(price(" 0.5 ").unwrap(), 0.5);
        for bad in ["-1", "1e308", "inf", "NaN", "x"] {
            let err = price(bad).unwrap_err().to_string();
            assert!(err.contains("expected a number from 0 to 1000000"), "{err}");
        }
    }
}
