//! The model's service times for the virtual clock, measured for real: the shared model
//! the runner and the window serve with (`workload::model_service`, so a model already
//! warm in this process is not warmed up again) finishes its warm-up, then serves
//! [`MEASURED_REQUESTS`] requests of the scenario's steps on the scenario's device, timing
//! every step (from one `on_step` call to the next, as `request::run_inference` times
//! them) and every PNG encoding (the `upload` span's work).

use std::time::{Duration, Instant};

use crate::config::WorkloadSettings;
use crate::record::DeviceInfo;
use crate::record::report::ModelTimes;
use crate::workload::model_service;
use crate::workload::request::MODEL_PROMPTS;

use super::SessionError;

/// Requests the times are measured from: 4 of 20 steps make 80 steps, about 9 s on
/// llvmpipe in a quiet release build (115 ms a step, README's Model measurements; over a
/// second a step in a debug build on a busy machine) and 0.5 s on the CPU backend.
pub const MEASURED_REQUESTS: usize = 4;
/// How long the warm-up may take: the first one on llvmpipe compiles shaders for tens of
/// seconds.
const WARM_UP_LIMIT: Duration = Duration::from_secs(600);

/// Warms the model up (if it is not yet) and measures its times on `workload.device`.
/// Errors: the model cannot load, warm up or run (the message says which).
pub fn measure(workload: &WorkloadSettings) -> Result<ModelTimes, SessionError> {
    let fail = |what: String| SessionError::Calibration(format!("the model's times: {what}"));
    let service = model_service(workload)?;
    let status = service.wait_ready(WARM_UP_LIMIT);
    if let Some(error) = status.error {
        return Err(fail(error));
    }
    if !status.ready {
        return Err(fail(format!(
            "the warm-up has not finished in {} s",
            WARM_UP_LIMIT.as_secs()
        )));
    }
    let steps = workload.steps.max(1);
    let mut step_ms = Vec::with_capacity(MEASURED_REQUESTS * steps);
    let mut upload_ms = Vec::with_capacity(MEASURED_REQUESTS);
    for index in 0..MEASURED_REQUESTS {
        let prompt = MODEL_PROMPTS[index % MODEL_PROMPTS.len()];
        let seed = workload.seed.wrapping_add(index as u64);
        let mut last: Option<Instant> = None;
        let mut on_step = |_step: usize| {
            let now = Instant::now();
            if let Some(last) = last {
                step_ms.push(millis(now - last));
            }
            last = Some(now);
            true
        };
        let image = service.generate(prompt, steps, seed, &|| false, &mut on_step);
        let image = image.map_err(|e| fail(e.to_string()))?;
        if let Some(last) = last {
            step_ms.push(millis(last.elapsed())); // the last step, to the image
        }
        let image = image.ok_or_else(|| fail("a request stopped without a picture".into()))?;
        let started = Instant::now();
        image.to_png().map_err(|e| fail(e.to_string()))?;
        upload_ms.push(millis(started.elapsed()));
    }
    let device = status
        .device
        .ok_or_else(|| fail("no device was chosen".into()))?;
    Ok(ModelTimes {
        source: format!(
            "{MEASURED_REQUESTS} requests of {steps} steps served by the model on {}, \
             after its warm-up",
            describe(&device)
        ),
        device_choice: workload.device,
        device,
        warm_up_s: status.warm_up_s.unwrap_or(0.0),
        requests: MEASURED_REQUESTS as u64,
        steps_per_request: steps,
        step_ms,
        upload_ms,
    })
}

/// The device as the report's `device` section names it: adapter, backend and type, and
/// why it is not a GPU when it is not.
fn describe(device: &DeviceInfo) -> String {
    let mut words = format!(
        "{} ({}, {})",
        device.adapter, device.backend, device.device_type
    );
    if let Some(why) = &device.fallback_reason {
        words += &format!(": {why}");
    }
    words
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
