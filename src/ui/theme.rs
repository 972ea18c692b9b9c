//! One colour per meaning, used by every view, so "red" always means "lost".

use eframe::egui::Color32;

use crate::record::Outcome;

pub const QUEUE: Color32 = Color32::from_rgb(90, 160, 255);
pub const LIMIT: Color32 = Color32::from_rgb(230, 160, 40);
pub const OK: Color32 = Color32::from_rgb(70, 180, 90);
pub const FAILED: Color32 = Color32::from_rgb(230, 140, 30);
pub const LOST: Color32 = Color32::from_rgb(225, 50, 50);
pub const IN_FLIGHT: Color32 = Color32::from_rgb(150, 150, 150);
pub const NOT_SAMPLED: Color32 = Color32::from_rgb(140, 140, 170);
pub const SIGTERM: Color32 = Color32::from_rgb(240, 170, 40);
pub const EXIT: Color32 = Color32::from_rgb(70, 180, 90);
pub const RECEIVED: Color32 = Color32::from_rgb(170, 110, 230);

pub fn outcome(outcome: &Outcome) -> Color32 {
    match outcome {
        Outcome::Ok => OK,
        Outcome::Failed => FAILED,
        Outcome::LostAtKill => LOST,
        Outcome::InFlight => IN_FLIGHT,
    }
}

pub fn outcome_name(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Ok => "ok",
        Outcome::Failed => "failed",
        Outcome::LostAtKill => "lost at kill",
        Outcome::InFlight => "in flight",
    }
}
