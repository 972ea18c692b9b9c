//! The inference model at a glance: the device it runs on (adapter, backend, type, and
//! why it is not a GPU when it is not), its warm-up progress while shaders compile, and
//! the picture the last request produced with that request's trace id.

use eframe::egui::{self, Color32, ColorImage, RichText, TextureHandle, TextureOptions};

use super::theme;
use crate::record::LastImage;
use crate::session::live::Snapshot;

/// The last picture's texture, uploaded again only when a new request's picture arrives.
#[derive(Default)]
pub struct ImageCache {
    shown: Option<(String, TextureHandle)>,
}

impl ImageCache {
    fn texture(&mut self, ctx: &egui::Context, image: &LastImage) -> Option<&TextureHandle> {
        let stale = self
            .shown
            .as_ref()
            .is_none_or(|(trace_id, _)| *trace_id != image.trace_id);
        if stale {
            let size = [image.width as usize, image.height as usize];
            if image.rgba.len() != size[0] * size[1] * 4 {
                return None; // a malformed picture is not drawn, and not fatal
            }
            let pixels = ColorImage::from_rgba_unmultiplied(size, &image.rgba);
            // Nearest: a 32x32 picture magnified should look like its pixels.
            let texture = ctx.load_texture("last-image", pixels, TextureOptions::NEAREST);
            self.shown = Some((image.trace_id.clone(), texture));
        }
        self.shown.as_ref().map(|(_, texture)| texture)
    }
}

pub fn show(ui: &mut egui::Ui, snapshot: &Snapshot, cache: &mut ImageCache) {
    let device = &snapshot.report.device;
    ui.label(RichText::new("Inference").strong());
    if device.workload != "model" {
        ui.label(format!(
            "synthetic workload: {}. Choose \"model\" under Traffic to serve real \
             inference.",
            device.name
        ));
        return;
    }
    ui.label(format!(
        "{} ({}, {})",
        device.name,
        device.backend.as_deref().unwrap_or("choosing"),
        device.device_type.as_deref().unwrap_or("-")
    ));
    if let Some(reason) = &device.fallback_reason {
        ui.label(RichText::new(reason).color(theme::SIGTERM));
    }
    if let Some(error) = &device.error {
        ui.label(RichText::new(error).color(theme::LOST));
    }
    match device.warm_up_s {
        Some(took) => {
            ui.weak(format!("warm-up took {took:.1} s"));
        }
        None if device.error.is_none() => {
            ui.add(
                egui::ProgressBar::new(device.warm_up_fraction.unwrap_or(0.0))
                    .show_percentage()
                    .text(format!(
                        "warm-up: {}",
                        device.warm_up_stage.as_deref().unwrap_or("starting")
                    )),
            );
        }
        None => {}
    }
    match &snapshot.last_image {
        Some(image) => {
            ui.horizontal(|ui| {
                if let Some(texture) = cache.texture(ui.ctx(), image) {
                    ui.image((texture.id(), egui::vec2(96.0, 96.0)));
                }
                ui.vertical(|ui| {
                    ui.label(format!("prompt \"{}\"", image.prompt));
                    ui.label(
                        RichText::new(format!("trace {}", image.trace_id))
                            .monospace()
                            .size(10.0)
                            .color(Color32::LIGHT_GRAY),
                    );
                });
            });
        }
        None => {
            ui.weak("no picture yet");
        }
    }
}
