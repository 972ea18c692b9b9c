//! The right panel's accounting: where every span went, with the identity spelled out,
//! the rates, what the backend ingests and what that costs, and request latency.

use eframe::egui::{self, Color32, RichText};

use super::theme;
use crate::record::SpanCounts;
use crate::record::rates::RateReport;
use crate::record::report::{RequestReport, SpanReport};
use crate::session::live::Snapshot;

/// Seconds in a 30-day month, for the monthly cost.
const MONTH_S: f64 = 30.0 * 24.0 * 3600.0;

/// One row of the identity: its sign, the bucket's name (help on hover) and its count.
fn row(ui: &mut egui::Ui, sign: &str, name: &str, value: u64, colour: Color32, help: &str) {
    ui.label(sign);
    ui.label(RichText::new(name).color(colour))
        .on_hover_text(help);
    ui.label(RichText::new(format!("{value}")).monospace().strong());
    ui.end_row();
}

/// The right panel's accounting, top to bottom: spans, rates, ingestion and cost, requests.
pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, price_per_million: &mut f64) {
    let report = &snapshot.report;
    every_span(ui, &report.spans, &report.rates);

    ui.add_space(6.0);
    last_second_rates(ui, &report.rates);

    ui.add_space(6.0);
    ingestion_and_cost(ui, &report.rates, price_per_million);

    ui.add_space(6.0);
    requests(ui, &report.requests, report.semantics);
}

/// "Every span": the identity's rows, whether it closes, and the sampled fraction.
fn every_span(ui: &mut egui::Ui, spans: &SpanReport, rates: &RateReport) {
    let c = &spans.counts;
    ui.label(RichText::new("Every span").strong().size(15.0));
    egui::Grid::new("accounting")
        .num_columns(3)
        .spacing([8.0, 2.0])
        .show(ui, |ui| identity_rows(ui, c));
    identity_check(ui, spans.unaccounted);
    let sampled_pct = 100.0 * rates.sampled_fraction.unwrap_or(0.0);
    ui.label(format!(
        "sampled {:.1} %, collector received {}",
        sampled_pct, c.received
    ));
}

/// The accounting identity as grid rows: created = not sampled + exported + ... + queued.
fn identity_rows(ui: &mut egui::Ui, c: &SpanCounts) {
    row(
        ui,
        "",
        "created",
        c.created,
        Color32::WHITE,
        "Spans ended by the app.",
    );
    row(
        ui,
        "=",
        "not sampled",
        c.not_sampled,
        theme::NOT_SAMPLED,
        "Dropped by the sampler by design.",
    );
    row(
        ui,
        "+",
        "exported",
        c.exported,
        theme::OK,
        "Acknowledged by the backend.",
    );
    row(
        ui,
        "+",
        "dropped (queue full)",
        c.dropped_queue_full,
        theme::LOST,
        "The queue was at max_queue_size: python evicts the oldest, rust rejects the newest.",
    );
    if c.dropped_after_shutdown > 0 {
        row(
            ui,
            "+",
            "ended after shutdown",
            c.dropped_after_shutdown,
            theme::LOST,
            "Ended after the provider shut down; both SDKs discard them.",
        );
    }
    row(
        ui,
        "+",
        "export failed",
        c.export_failed,
        theme::FAILED,
        "The exporter gave up on the batch (errors, retries exhausted).",
    );
    row(
        ui,
        "+",
        "lost at kill",
        c.lost_at_kill,
        theme::LOST,
        "In memory (queued or in an export) when SIGKILL came.",
    );
    row(
        ui,
        "+",
        "queued",
        c.queued,
        theme::QUEUE,
        "Still in memory: in the queue or in an export in flight.",
    );
}

/// Whether the identity closes: green at 0, else the report's unaccounted count.
fn identity_check(ui: &mut egui::Ui, unaccounted: i64) {
    if unaccounted == 0 {
        ui.label(RichText::new("the identity closes: unaccounted = 0").color(theme::OK));
    } else {
        // Between two counter reads a span can be in transit; at rest this is exact.
        ui.label(
            RichText::new(format!(
                "unaccounted {unaccounted} (spans in transit while counting)"
            ))
            .color(theme::FAILED),
        );
    }
}

/// "Rates (last second)": created, exported, received, dropped per second.
fn last_second_rates(ui: &mut egui::Ui, rates: &RateReport) {
    ui.label(RichText::new("Rates (last second)").strong());
    let RateReport {
        created_per_s: created,
        exported_per_s: exported,
        received_per_s: received,
        dropped_per_s: dropped,
        ..
    } = *rates;
    egui::Grid::new("rates").num_columns(2).show(ui, |ui| {
        for (name, value, colour) in [
            ("created/s", created, Color32::WHITE),
            ("exported/s", exported, theme::OK),
            ("received/s", received, theme::RECEIVED),
            ("dropped/s", dropped, theme::LOST),
        ] {
            ui.label(RichText::new(name).color(colour));
            ui.label(RichText::new(format!("{value:.0}")).monospace());
            ui.end_row();
        }
    });
}

/// "Ingestion at the backend": spans/s and kB/s received, the price field, the monthly cost.
fn ingestion_and_cost(ui: &mut egui::Ui, rates: &RateReport, price_per_million: &mut f64) {
    ui.label(RichText::new("Ingestion at the backend").strong());
    let received = rates.received_per_s;
    let bytes_per_span = rates.bytes_per_span.unwrap_or(0.0);
    ui.label(format!(
        "{received:.0} spans/s, {:.1} kB/s ({bytes_per_span:.0} B/span)",
        received * bytes_per_span / 1000.0
    ));
    ui.horizontal(|ui| {
        let label = ui.label("price $ per million spans");
        ui.add(
            egui::DragValue::new(price_per_million)
                .range(0.0..=1000.0)
                .speed(0.01)
                .max_decimals(2),
        )
        .labelled_by(label.id);
    });
    let monthly = received * MONTH_S / 1e6 * *price_per_million;
    ui.label(
        RichText::new(format!("about ${monthly:.0} per month at this rate"))
            .strong()
            .size(15.0),
    );
}

/// A latency in milliseconds, or "-" when there is none yet.
fn ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.1} ms"))
}

/// "Requests": end-to-end latency, serving time with tracing on and off, and the counts.
fn requests(ui: &mut egui::Ui, r: &RequestReport, semantics: &str) {
    ui.label(RichText::new("Requests").strong());
    ui.label(format!(
        "latency p50 {}, p99 {} (waiting in line included)",
        ms(r.latency_ms.p50),
        ms(r.latency_ms.p99)
    ));
    serving_time(ui, r);
    if semantics == "python" {
        // The profile imitates the Python SDK's batching, not its cost per span.
        ui.label(
            RichText::new(format!(
                "serving time carries the span cost of {}, not the Python SDK's; your app's \
                 own: gracetrace probe --compare tracing.enabled=false,true",
                r.service_ms.measured_with
            ))
            .small()
            .weak(),
        );
    }
    ui.label(format!(
        "{} sent, {} completed, {} rejected, {} cancelled, {} refused, {} returned",
        r.sent, r.completed, r.rejected, r.cancelled, r.refused, r.returned
    ));
}

/// The serving-time grid: p50 and p99 with tracing on and off, and how many requests each.
fn serving_time(ui: &mut egui::Ui, r: &RequestReport) {
    // The cost of tracing: serving time alone, for requests served with tracing on and
    // with it off (toggle tracing, or flushing in every request, and compare).
    egui::Grid::new("service_ms").num_columns(3).show(ui, |ui| {
        ui.label("serving time");
        ui.label("p50");
        ui.label("p99");
        ui.end_row();
        for (label, s) in [
            ("tracing on", r.service_ms.tracing_on),
            ("tracing off", r.service_ms.tracing_off),
        ] {
            ui.label(format!("{label} ({})", s.count));
            ui.label(ms(s.p50));
            ui.label(ms(s.p99));
            ui.end_row();
        }
    });
}
