//! The desktop window: live controls on the left, the span queue, the exports and the
//! shutdown timeline on one time axis in the middle, the accounting on the right. With
//! "served by your app", the same places show the user's own app run under the probe
//! (the `your_app/` files).
//!
//! The window only draws and sends commands: [`crate::session::live`] owns the session on its own
//! thread and publishes a snapshot (the same `Report` that `gracetrace run --json`
//! writes), so every number on screen is one the JSON report also has.

pub mod controls;
pub mod copy_as_code;
pub mod counters;
pub mod exports;
pub mod gantt;
pub mod heatmap;
pub mod inference;
pub mod queue;
pub mod shutdown_timeline;
pub mod status_bar;
pub mod theme;
pub mod time_axis;
pub mod trace;
pub mod whatif;
pub mod whatif_fleet;
pub mod window;
pub mod your_app;

use std::path::Path;

use crate::session::live;
use crate::session::your_app::AppStart;

pub use window::GraceApp;

/// Why the window could not open.
#[derive(Debug, thiserror::Error)]
pub enum GuiError {
    /// The scenario given on the command line is invalid (the error names file and line).
    #[error(transparent)]
    Settings(#[from] crate::config::ConfigError),
    /// eframe could not create the window (no display, no graphics adapter).
    #[error("cannot open the window: {0}")]
    Window(String),
}

/// Opens the window and blocks until it is closed. Settings come from `scenario` when
/// given, else from the settings remembered at the last exit, else defaults and the
/// environment (the same layers as `gracetrace run`). With `your_app`, "served by your
/// app" is chosen with that command line and URL typed, and with `start` it starts at once.
pub fn run_gui(
    scenario: Option<&Path>,
    your_app: Option<AppStart>,
    start: bool,
) -> Result<(), GuiError> {
    let settings = live::initial_settings(scenario)?;
    let scenario_path = scenario.map(|p| p.display().to_string());
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title("gracetrace")
            .with_inner_size([1500.0, 920.0]),
        ..Default::default()
    };
    eframe::run_native(
        "gracetrace",
        options,
        Box::new(move |cc| {
            let ctx = cc.egui_ctx.clone();
            let mut app = GraceApp::live(settings, Box::new(move || ctx.request_repaint()));
            if let Some(path) = scenario_path {
                app.panel.scenario_path = path;
            }
            if let Some(given) = your_app {
                app.panel.your_app = true;
                app.panel.app = given.clone();
                app.carry_out(controls::Action::ServeApp(true));
                if start {
                    app.carry_out(controls::Action::StartApp(given));
                }
            }
            app.remember_on_exit = true;
            Ok(Box::new(app))
        }),
    )
    // eframe's error holds non-Send boxed errors; its text is what the user needs.
    .map_err(|e| GuiError::Window(e.to_string()))
}
