//! What this binary was built with: the `gui` (the window) and `model` (the burn model)
//! Cargo features, and the one error a part that was left out answers with. The
//! command line turns it into exit 2, as bad input: the user asked for something this
//! build cannot do, and the message says how to get a build that can.

use super::{Settings, WorkloadKind};

/// Whether the window is built in (`gui`).
pub const GUI: bool = cfg!(feature = "gui");
/// Whether the burn model is built in (`model`).
pub const MODEL: bool = cfg!(feature = "model");

/// `what` needs the Cargo feature `feature`, which this build left out.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{what} needs the `{feature}` feature, which this build leaves out (built with \
     --no-default-features); rebuild with `cargo install --path . --features {feature}`"
)]
pub struct NotBuilt {
    /// What was asked for, as the user wrote it (a command, a knob's value).
    pub what: &'static str,
    /// The Cargo feature that brings it.
    pub feature: &'static str,
}

impl NotBuilt {
    /// The model workload, asked for by `workload.kind = "model"`.
    pub const MODEL_WORKLOAD: NotBuilt = NotBuilt {
        what: "workload.kind = \"model\"",
        feature: "model",
    };
}

/// Refuses settings that need a part this build left out (today: the model workload).
pub fn check(settings: &Settings) -> Result<(), NotBuilt> {
    if settings.workload.kind == WorkloadKind::Model && !MODEL {
        return Err(NotBuilt::MODEL_WORKLOAD);
    }
    Ok(())
}
