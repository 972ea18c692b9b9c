//! Your app's last lines of output (stdout, and stderr in amber): the window has no
//! terminal, so this small scrolling log is where the app's own words appear.

use eframe::egui::{self, RichText};

use crate::session::your_app::{AppView, LOG_LINES, Stream};
use crate::ui::theme;

/// The log's height, in points: a few lines, scrolled to the newest.
const HEIGHT: f32 = 140.0;

pub fn show(ui: &mut egui::Ui, app: Option<&AppView>) {
    ui.horizontal(|ui| {
        ui.label(RichText::new("Your app's output").strong().size(15.0));
        ui.weak(format!("the last {LOG_LINES} lines; stderr in amber"));
    });
    let lines = app.map(|a| &a.log).filter(|log| !log.is_empty());
    let Some(lines) = lines else {
        ui.weak("Nothing written yet.");
        return;
    };
    egui::Frame::group(ui.style()).show(ui, |ui| {
        egui::ScrollArea::vertical()
            .id_salt("app-log")
            .max_height(HEIGHT)
            .auto_shrink([false, true])
            .stick_to_bottom(true)
            .show(ui, |ui| {
                for line in lines {
                    let text = RichText::new(&line.text).monospace();
                    ui.label(match line.stream {
                        Stream::Stdout => text,
                        Stream::Stderr => text.color(theme::SIGTERM),
                    });
                }
            });
    });
}
