//! What a setting costs your app, measured: the compare panel. A knob and its values
//! (`KEY=A,B,...`, as `gracetrace probe --compare` takes it, checked as it is typed), Run,
//! and the table of the runs as each ends, with the same columns as the command's table
//! (every figure a field of the run's `CompareRow`).

use eframe::egui::{self, RichText};

use crate::config::Settings;
use crate::record::compare::{COLUMNS, CompareRow, TABLE_NOTE};
use crate::session::your_app::AppStart;
use crate::session::your_app_compare::{CompareView, check};
use crate::ui::theme;

/// The panel's own state: the text typed.
#[derive(Clone, Debug)]
pub struct Form {
    pub text: String,
}

impl Default for Form {
    fn default() -> Form {
        Form {
            text: "tracing.enabled=false,true".into(),
        }
    }
}

/// Draws the panel; returns the text to run when Run was pressed. `busy` says why a run
/// cannot start now (your app or a comparison is running).
pub fn show(
    ui: &mut egui::Ui,
    form: &mut Form,
    view: Option<&CompareView>,
    (settings, start): (&Settings, &AppStart),
    busy: Option<&str>,
) -> Option<String> {
    ui.label(
        RichText::new("Compare runs of your app")
            .strong()
            .size(15.0),
    );
    ui.label(
        "Runs your app once per value, each a fresh process with the same traffic, seed \
         and SIGTERM time, with the settings on the left and the command and URL above \
         them: tracing.enabled=false,true is what tracing costs your app.",
    );
    let checked = check(settings, start, &form.text);
    let mut run = None;
    ui.horizontal(|ui| {
        let label = ui.label("compare");
        ui.add(
            egui::TextEdit::singleline(&mut form.text)
                .hint_text("KEY=A,B,...")
                .desired_width(320.0),
        )
        .labelled_by(label.id);
        let ready = checked.is_ok() && busy.is_none();
        if ui.add_enabled(ready, egui::Button::new("Run")).clicked() {
            run = Some(form.text.clone());
        }
    });
    match (&checked, busy) {
        (Err(why), _) => {
            ui.label(RichText::new(why.to_string()).color(theme::LOST));
        }
        (Ok(()), Some(why)) => {
            ui.weak(why);
        }
        (Ok(()), None) => {}
    }
    if let Some(view) = view {
        progress(ui, view);
        table(ui, view);
    }
    run
}

/// Which run is under way, or how the comparison ended.
fn progress(ui: &mut egui::Ui, view: &CompareView) {
    let total = view.values.len();
    if let Some(i) = view.running {
        let value = view.values.get(i).map_or("", String::as_str);
        ui.label(format!(
            "run {} of {total}: {}={value}, under way...",
            i + 1,
            view.key
        ));
    } else if let Some(error) = &view.error {
        ui.label(RichText::new(format!("stopped: {error}")).color(theme::LOST));
    } else if view.done {
        ui.label(format!("{} runs of {total} done.", view.runs.len()));
    }
}

/// One row per value: its figures once its run has ended, else where it stands.
fn table(ui: &mut egui::Ui, view: &CompareView) {
    // Twelve columns may be wider than the panel: they scroll sideways, never clipped.
    egui::ScrollArea::horizontal()
        .id_salt("compare-table-scroll")
        .show(ui, |ui| rows(ui, view));
    ui.weak(TABLE_NOTE);
}

/// The heading and a row per value.
fn rows(ui: &mut egui::Ui, view: &CompareView) {
    egui::Grid::new("compare-table")
        .num_columns(COLUMNS.len() + 1)
        .striped(true)
        .spacing([8.0, 3.0])
        .show(ui, |ui| {
            ui.label(RichText::new(&view.key).strong());
            for heading in COLUMNS {
                ui.label(RichText::new(heading).strong());
            }
            ui.end_row();
            for (i, value) in view.values.iter().enumerate() {
                ui.label(RichText::new(value).monospace());
                match view.runs.get(i) {
                    Some(run) => figures(ui, &run.row),
                    None if view.running == Some(i) => {
                        ui.weak("running...");
                    }
                    None => {
                        ui.weak("waiting");
                    }
                }
                ui.end_row();
            }
        });
}

/// A run's figures, formatted as `probe --compare` prints them; a SIGKILLed app's ending
/// in the colour of loss.
fn figures(ui: &mut egui::Ui, r: &CompareRow) {
    let [figures @ .., ending] = r.cells();
    for cell in figures {
        ui.label(RichText::new(cell).monospace());
    }
    let ending = RichText::new(ending);
    ui.label(match r.killed {
        true => ending.color(theme::LOST),
        false => ending,
    });
}
