//! The diffusion process: a cosine noise schedule in continuous time, the `v` target the
//! network learns, and the deterministic DDIM update the sampler takes.
//!
//! With `a = sqrt(alpha_bar(t))` and `s = sqrt(1 - alpha_bar(t))`, a noisy image is
//! `x_t = a x0 + s eps`, and the network predicts `v = a eps - s x0` (Salimans & Ho 2022).
//! `v` stays well scaled at every noise level, including pure noise at `t = 1` where the
//! schedule reaches zero signal (Lin et al. 2024, "Common diffusion noise schedules and sample
//! steps are flawed"), so sampling starts from exactly the distribution training saw.
//! From `v`: `x0 = a x_t - s v` and `eps = s x_t + a v`; the sampler takes deterministic DDIM
//! steps (Song et al. 2021): `x_next = a' x0 + s' eps`.

use std::f64::consts::FRAC_PI_2;

/// Offset of the cosine schedule (Nichol & Dhariwal 2021): keeps the noise at `t = 0` small
/// but not zero.
const OFFSET: f64 = 0.008;

/// `alpha_bar(t)` for `t` in `[0, 1]`: 1 at `t = 0` (clean), 0 at `t = 1` (pure noise).
pub fn alpha_bar(t: f64) -> f64 {
    let t = t.clamp(0.0, 1.0);
    let f = |t: f64| ((t + OFFSET) / (1.0 + OFFSET) * FRAC_PI_2).cos().powi(2);
    (f(t) / f(0.0)).clamp(0.0, 1.0)
}

/// `(a, s)`: the signal and noise coefficients at `t`.
pub fn coefficients(t: f64) -> (f32, f32) {
    let ab = alpha_bar(t);
    (ab.sqrt() as f32, (1.0 - ab).sqrt() as f32)
}

/// The noise level before step `i` of `steps` (evenly spaced from 1 down to 0).
pub fn step_time(i: usize, steps: usize) -> f64 {
    1.0 - i as f64 / steps.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_runs_from_clean_to_pure_noise() {
        assert!((alpha_bar(0.0) - 1.0).abs() < 1e-12);
        assert!(alpha_bar(1.0) < 1e-12);
        let mut last = 1.0;
        for i in 1..=100 {
            let ab = alpha_bar(i as f64 / 100.0);
            assert!(ab <= last);
            last = ab;
        }
    }

    #[test]
    fn x0_and_eps_are_recovered_from_v() {
        let (a, s) = coefficients(0.37);
        let (x0, eps) = (0.25f32, -1.5f32);
        let x = a * x0 + s * eps;
        let v = a * eps - s * x0;
        assert!((a * x - s * v - x0).abs() < 1e-6);
        assert!((s * x + a * v - eps).abs() < 1e-6);
    }
}
