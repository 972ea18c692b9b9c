//! The right panel's counts for your app, as the collector saw them: spans and requests
//! received, what arrived after SIGTERM, what was cut off, and beside them what the app
//! says it ended and which SDK it runs.

use eframe::egui::{self, RichText};

use crate::record::probe::ProbeReport;
use crate::session::your_app::AppView;
use crate::ui::theme;

pub fn show(ui: &mut egui::Ui, app: Option<&AppView>) {
    ui.label(
        RichText::new("Your app, seen by the collector")
            .strong()
            .size(15.0),
    );
    let Some(app) = app else {
        ui.label("No app started yet.");
        return;
    };
    ui.label(RichText::new(app.command.join(" ")).monospace().small());
    let Some(report) = app.report.as_deref() else {
        return;
    };
    ui.label(
        RichText::new(format!(
            "collector received {} spans",
            report.collector.spans_received
        ))
        .strong()
        .size(15.0)
        .color(theme::RECEIVED),
    );
    egui::Grid::new("app-counts")
        .num_columns(2)
        .spacing([8.0, 2.0])
        .show(ui, |ui| rows(ui, report));
    let p = &report.probe;
    match p.spans_ended {
        Some(ended) => ui.label(format!("your app says it ended {ended} spans")),
        None if p.exit_ms.is_some() => ui.weak("your app printed no `spans ended: N`"),
        None => ui.weak("what your app ended: when it prints `spans ended: N`"),
    };
    let sdk = match (&p.service_name, &p.sdk.language, &p.sdk.version) {
        (_, None, _) => "no resource has arrived yet".to_owned(),
        (name, Some(language), version) => format!(
            "{} runs opentelemetry-{language} {}; rules: {}",
            name.as_deref().unwrap_or("the app"),
            version.as_deref().unwrap_or("(no version)"),
            p.rules.as_deref().unwrap_or("none here")
        ),
    };
    ui.label(sdk);
}

/// The collector's counts, each a field of the probe's report.
fn rows(ui: &mut egui::Ui, report: &ProbeReport) {
    let (c, p) = (&report.collector, &report.probe);
    let rows = [
        ("export requests accepted", c.requests_accepted),
        ("traces", c.traces_seen),
        ("spans after SIGTERM", p.spans_after_sigterm),
        ("requests after SIGTERM", p.requests_after_sigterm),
        ("requests cut off mid-body", p.requests_cut_off),
        ("requests never answered", p.requests_abandoned),
        ("requests rejected", c.requests_rejected),
    ];
    for (name, value) in rows {
        ui.label(name);
        ui.label(RichText::new(value.to_string()).monospace().strong());
        ui.end_row();
    }
}
