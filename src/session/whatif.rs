//! The window's "What if" and advisor, run by the live engine: one knob swept over a range,
//! or two knobs over the grid of their ranges ([`super::sweep`]), or the advisor
//! ([`super::advise`]), all in virtual time on a worker thread, on the settings in force.
//! The virtual clock is calibrated once per window (a 1.5 s real run, [`calibrate`]). The
//! engine publishes progress and results in its snapshot ([`View`]); the window only draws
//! them and sends commands.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, TryRecvError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::advise::{Advice, Advisor, render::render};
use super::sweep::{self, Grid, Vary};
use super::virtual_clock::calibrate;
use crate::config::knobs::{self, Bounds};
use crate::config::{ConfigError, Settings, Source};
use crate::sim::Calibration;

/// After the settings in force change, a finished sweep is run again once they have been
/// still this long, so a dragged slider starts one sweep, not one per step.
pub const RESWEEP_AFTER: Duration = Duration::from_millis(800);
/// Arrival seeds per cell; the chart shows each cell's median run.
pub const REPEATS: usize = 3;
/// Arrival seeds per advisor probe (as `gracetrace advise --seeds 3`).
const ADVISE_SEEDS: usize = 3;
/// The most values one what-if range may have.
pub const MAX_STEPS: usize = 60;
/// The most cells one what-if may have (`gracetrace sweep` allows far more): a 20 x 20
/// heatmap still reads cell by cell, and its 1,200 simulated runs of a short scenario
/// take seconds, not minutes.
pub const MAX_CELLS: usize = 400;

/// One knob and the range the window asks to sweep it over.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    pub key: &'static str,
    pub from: f64,
    pub to: f64,
    /// How many values from `from` to `to`, both included.
    pub steps: usize,
}

impl Axis {
    /// A range spanning a decade or more is stepped geometrically, else arithmetically.
    pub fn geometric(&self) -> bool {
        self.from > 0.0 && self.to >= 10.0 * self.from
    }

    /// The `--vary` argument of `gracetrace sweep` that runs the same values.
    pub fn vary_arg(&self) -> String {
        let steps = self.steps.clamp(1, MAX_STEPS);
        if steps == 1 || self.from == self.to {
            return format!("{}={}", self.key, self.from);
        }
        let gaps = (steps - 1) as f64;
        if self.geometric() {
            let factor = (self.to / self.from).powf(1.0 / gaps);
            format!("{}={}..{}x{factor}", self.key, self.from, self.to)
        } else {
            let step = (self.to - self.from) / gaps;
            format!("{}={}..{}+{step}", self.key, self.from, self.to)
        }
    }
}

/// What the window asks to sweep: one knob (a line chart), or two (a heatmap).
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    /// Along the chart's x axis, the heatmap's columns.
    pub first: Axis,
    /// The heatmap's rows, when a second knob is chosen.
    pub second: Option<Axis>,
}

impl Request {
    /// A sweep of one knob.
    pub fn one(first: Axis) -> Request {
        Request {
            first,
            second: None,
        }
    }

    /// The knobs swept, the first first.
    pub fn axes(&self) -> impl Iterator<Item = &Axis> {
        std::iter::once(&self.first).chain(&self.second)
    }

    /// The `--vary` arguments of `gracetrace sweep` that run the same cells.
    pub fn vary_args(&self) -> Vec<String> {
        self.axes().map(Axis::vary_arg).collect()
    }

    /// Why the window does not sweep this (said next to its Sweep button), if it does not:
    /// one knob twice, a range upside down, or more cells than [`MAX_CELLS`].
    pub fn refused(&self) -> Option<String> {
        if let Some(second) = self.second.as_ref().filter(|s| s.key == self.first.key) {
            return Some(format!("{} is chosen twice: pick another", second.key));
        }
        if let Some(axis) = self.axes().find(|a| a.from > a.to) {
            return Some(format!("{}: from must not be above to", axis.key));
        }
        let steps: Vec<usize> = self.axes().map(|a| a.steps.clamp(1, MAX_STEPS)).collect();
        let cells: usize = steps.iter().product();
        (cells > MAX_CELLS).then(|| {
            let product = steps.iter().map(usize::to_string).collect::<Vec<_>>();
            format!(
                "{} = {cells} cells: at most {MAX_CELLS} (fewer values, or \
                 `gracetrace sweep` for more)",
                product.join(" x ")
            )
        })
    }
}

/// A knob's name without its section (`max_queue_size`), for captions and cells.
pub fn short_name(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// The knobs a what-if can vary: every numeric knob of the knob table.
pub fn knobs() -> Vec<&'static str> {
    knobs::KNOBS
        .iter()
        .filter(|k| k.bounds.numeric().is_some())
        .map(|k| k.key)
        .collect()
}

/// The knob's value in `settings`, when it has a number (an optional knob may be "none").
pub fn current(key: &str, settings: &Settings) -> Option<f64> {
    let knob = knobs::find(key)?;
    (knob.get)(settings).parse::<f64>().ok()
}

/// A first range for `key`: an eighth to eight times its value in `settings`, within the
/// knob's bounds (from its minimum when the value is 0 or none).
pub fn default_range(key: &str, settings: &Settings) -> Option<(f64, f64)> {
    let knob = knobs::find(key)?;
    let (min, max) = knob.bounds.numeric()?;
    let whole = matches!(knob.bounds, Bounds::Int { .. } | Bounds::OptionalInt { .. });
    let round = |v: f64| if whole { v.round() } else { v };
    match current(key, settings).filter(|v| *v > 0.0) {
        Some(now) => Some((
            round((now / 8.0).max(min)).max(min),
            round((now * 8.0).min(max)),
        )),
        None => Some((min, round(min + (max - min) / 10.0))),
    }
}

/// `on` with `change` set, the export batch following the queue down unless the change
/// sets it (as the sweep and the controls do), checked as a live change.
pub fn with_change(
    on: &Settings,
    change: &[(&'static str, String)],
) -> Result<Settings, ConfigError> {
    let mut settings = on.clone();
    for (key, value) in change {
        settings.set(key, value, Source::Live)?;
    }
    if !change
        .iter()
        .any(|(k, _)| *k == "batch.max_export_batch_size")
    {
        settings.batch.fit_batch_to_queue();
    }
    settings.validate(Source::Live)?;
    Ok(settings)
}

/// The settings the simulator runs: those in force, with SIGTERM at the end of the
/// traffic when they have none (as `gracetrace advise` assumes), so that what the
/// platform's shutdown loses shows.
fn with_shutdown(settings: &Settings) -> (Settings, f64, bool) {
    let mut on = settings.clone();
    let assumed = on.shutdown.at_s.is_none();
    let at_s = on.shutdown.at_s.unwrap_or(on.workload.duration_s);
    on.shutdown.at_s = Some(at_s);
    (on, at_s, assumed)
}

/// One cell of a what-if: the knobs' values and what its median run lost.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// The first knob's value as the knob spells it (`gracetrace knobs`), and as a number
    /// for the chart.
    pub value: String,
    pub x: f64,
    /// The second knob's value, spelt and as a number, when two are swept.
    pub second: Option<String>,
    pub y: Option<f64>,
    pub created: u64,
    pub sampled: u64,
    pub dropped_queue_full: u64,
    pub lost_at_kill: u64,
    /// Every sampled span the collector did not get (dropped, failed, lost at kill).
    pub lost: u64,
    pub received: u64,
    pub killed: bool,
    /// The most spans any of the cell's runs lost.
    pub worst_lost: u64,
}

/// A finished what-if sweep.
#[derive(Clone, Debug)]
pub struct SweepResult {
    pub request: Request,
    /// The settings in force it ran on (before the assumed SIGTERM).
    pub base: Settings,
    /// When SIGTERM came, and whether the what-if chose it (the settings have none).
    pub sigterm_at_s: f64,
    pub sigterm_assumed: bool,
    /// The first knob's value in `base`, and the second's.
    pub current: Option<f64>,
    pub current_second: Option<f64>,
    pub repeats: usize,
    pub costs: Calibration,
    /// The first knob's values as swept (a whole-number knob skips repeats): the
    /// heatmap's columns; and the second's, its rows (none with one knob).
    pub columns: Vec<String>,
    pub rows: Vec<String>,
    /// The cells, the second knob's value changing fastest (as `gracetrace sweep` has them).
    pub points: Vec<Point>,
}

impl SweepResult {
    /// Cell `index`'s values on top of `on` (the window's settings now).
    pub fn cell_settings(
        &self,
        index: usize,
        on: &Settings,
    ) -> Option<Result<Settings, ConfigError>> {
        let point = self.points.get(index)?;
        Some(with_change(on, &self.change(point)))
    }

    /// `point`'s value of each knob swept, as a change to settings.
    pub fn change(&self, point: &Point) -> Vec<(&'static str, String)> {
        let mut change = vec![(self.request.first.key, point.value.clone())];
        if let (Some(axis), Some(value)) = (&self.request.second, &point.second) {
            change.push((axis.key, value.clone()));
        }
        change
    }

    /// The most spans any cell lost: the top of the heatmap's colour scale.
    pub fn most_lost(&self) -> u64 {
        self.points.iter().map(|p| p.lost).max().unwrap_or(0)
    }

    /// The cell in `column` and `row` (row 0 with one knob).
    pub fn index(&self, column: usize, row: usize) -> Option<usize> {
        let rows = self.rows.len().max(1);
        let index = column * rows + row;
        (column < self.columns.len() && row < rows && index < self.points.len()).then_some(index)
    }

    /// The cell of the settings in force, and whether its values are theirs exactly
    /// (else it is the nearest, the settings falling between swept values); none when
    /// they lie outside a knob's range.
    pub fn current_cell(&self) -> Option<(usize, bool)> {
        let (column, on_x) = nearest(&self.columns, self.current?, &self.request.first)?;
        let (row, on_y) = match &self.request.second {
            None => (0, true),
            Some(axis) => nearest(&self.rows, self.current_second?, axis)?,
        };
        Some((self.index(column, row)?, on_x && on_y))
    }
}

/// The index of the value nearest `now` (by ratio on a geometric axis) and whether it is
/// `now`; none when `now` lies outside the values.
fn nearest(values: &[String], now: f64, axis: &Axis) -> Option<(usize, bool)> {
    let numbers: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
    let lowest = numbers.iter().copied().reduce(f64::min)?;
    let highest = numbers.iter().copied().reduce(f64::max)?;
    if now < lowest || now > highest {
        return None;
    }
    let scale = |v: f64| if axis.geometric() { v.ln() } else { v };
    let distance = |i: usize| (scale(numbers[i]) - scale(now)).abs();
    let index = (0..numbers.len()).min_by(|&a, &b| distance(a).total_cmp(&distance(b)))?;
    Some((index, numbers[index] == now))
}

fn point(cell: &sweep::Cell) -> Point {
    let (m, w) = (cell.median(), cell.worst());
    let s = &m.outcome.spans;
    let value = |i: usize| cell.values.get(i).map(|v| v.1.clone());
    let first = value(0).unwrap_or_default();
    let second = value(1);
    Point {
        x: first.parse().unwrap_or(f64::NAN),
        value: first,
        y: second.as_ref().map(|v| v.parse().unwrap_or(f64::NAN)),
        second,
        created: s.created,
        sampled: s.sampled,
        dropped_queue_full: s.dropped_queue_full,
        lost_at_kill: s.lost_at_kill,
        lost: m.lost(),
        received: s.received,
        killed: m.outcome.killed,
        worst_lost: w.lost(),
    }
}

/// Sweeps `request` on `settings` in virtual time; `progress(done, total)` after each run.
pub fn sweep(
    request: &Request,
    settings: &Settings,
    costs: Calibration,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SweepResult, String> {
    if let Some(why) = request.refused() {
        return Err(why);
    }
    let varies = request.vary_args().into_iter().map(|arg| Vary::parse(&arg));
    let varies = varies
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let grid = Grid::new(varies).map_err(|e| e.to_string())?;
    let (on, sigterm_at_s, sigterm_assumed) = with_shutdown(settings);
    let swept = sweep::run(&on, &grid, REPEATS, costs, progress).map_err(|e| e.to_string())?;
    let mut values = grid.varies.into_iter().map(|v| v.values);
    Ok(SweepResult {
        request: request.clone(),
        base: settings.clone(),
        sigterm_at_s,
        sigterm_assumed,
        current: current(request.first.key, settings),
        current_second: (request.second.as_ref()).and_then(|a| current(a.key, settings)),
        repeats: swept.repeats,
        costs,
        columns: values.next().unwrap_or_default(),
        rows: values.next().unwrap_or_default(),
        points: swept.cells.iter().map(point).collect(),
    })
}

/// One recommendation of the advisor, as a change the window can apply.
#[derive(Clone, Debug, PartialEq)]
pub struct Recommendation {
    pub what: String,
    pub change: Vec<(&'static str, String)>,
}

/// A finished advice: the CLI's text and each recommendation as a change.
#[derive(Clone, Debug)]
pub struct AdviceResult {
    pub base: Settings,
    pub text: String,
    pub recommendations: Vec<Recommendation>,
}

/// The advisor's answers that are a setting: the queue and delay that drop nothing,
/// and each shutdown option that stops the loss at SIGKILL.
pub fn recommendations(advice: &Advice) -> Vec<Recommendation> {
    let mut out = Vec::new();
    let searches = [
        Some(&advice.queue),
        Some(&advice.delay_now),
        advice.delay_with_queue.as_ref(),
    ];
    for search in searches.into_iter().flatten() {
        let Some(found) = &search.found else { continue };
        let mut change: Vec<(&'static str, String)> = search.context.iter().cloned().collect();
        change.push((search.key, found.clone()));
        out.push(Recommendation {
            what: "drops nothing to a full queue".into(),
            change,
        });
    }
    for option in advice.shutdown.options.iter().filter(|o| o.stops_it()) {
        if let Some(probe) = option.probe() {
            out.push(Recommendation {
                what: format!("{}: loses nothing at SIGKILL", option.what),
                change: probe.change.clone(),
            });
        }
    }
    out
}

/// Runs the advisor on `settings` in virtual time.
pub fn advise(
    settings: &Settings,
    costs: Calibration,
    price: Option<f64>,
) -> Result<AdviceResult, String> {
    let advisor = Advisor::new(settings, costs, ADVISE_SEEDS).map_err(|e| e.to_string())?;
    let advice = advisor.run().map_err(|e| e.to_string())?;
    Ok(AdviceResult {
        base: settings.clone(),
        text: render(&advice, price),
        recommendations: recommendations(&advice),
    })
}

/// Where a background job is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Progress {
    /// The virtual clock's real calibration run is still going.
    pub calibrating: bool,
    pub done: usize,
    pub total: usize,
}

/// A job as the window sees it: running or not, its last result, its last error.
#[derive(Clone, Debug)]
pub struct JobView<T> {
    pub running: Option<Progress>,
    pub last: Option<Arc<T>>,
    pub error: Option<String>,
    /// The settings in force differ from those `last` ran on.
    pub stale: bool,
}

impl<T> Default for JobView<T> {
    fn default() -> Self {
        JobView {
            running: None,
            last: None,
            error: None,
            stale: false,
        }
    }
}

/// What the snapshot carries for the window.
#[derive(Clone, Debug, Default)]
pub struct View {
    pub sweep: JobView<SweepResult>,
    pub advice: JobView<AdviceResult>,
}

/// A job on its own thread: its progress counters and where its result arrives.
struct Running<T> {
    calibrating: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    total: Arc<AtomicUsize>,
    result: Receiver<Result<T, String>>,
}

/// One kind of job: the one running, the last result and error.
struct Slot<T> {
    running: Option<Running<T>>,
    last: Option<Arc<T>>,
    error: Option<String>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            running: None,
            last: None,
            error: None,
        }
    }
}

impl<T: Send + 'static> Slot<T> {
    /// Starts `job` on a thread unless one runs; it gets the calibrated costs (measured
    /// on first use, shared by every job) and a progress callback.
    fn start(
        &mut self,
        costs: &Arc<Mutex<Option<Calibration>>>,
        name: &str,
        job: impl FnOnce(Calibration, &(dyn Fn(usize, usize) + Sync)) -> Result<T, String>
        + Send
        + 'static,
    ) {
        if self.running.is_some() {
            return;
        }
        let (send, result) = channel();
        let calibrating = Arc::new(AtomicBool::new(true));
        let done = Arc::new(AtomicUsize::new(0));
        let total = Arc::new(AtomicUsize::new(0));
        let running = Running {
            calibrating: calibrating.clone(),
            done: done.clone(),
            total: total.clone(),
            result,
        };
        let costs = costs.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let measured = calibrated(&costs);
                calibrating.store(false, Relaxed);
                let outcome = measured.and_then(|c| {
                    job(c, &|d, t| {
                        done.store(d, Relaxed);
                        total.store(t, Relaxed);
                    })
                });
                let _ = send.send(outcome);
            });
        match spawned {
            Ok(_) => self.running = Some(running),
            Err(error) => self.error = Some(format!("cannot start the {name} thread: {error}")),
        }
    }

    /// Takes a finished job's result; true when one arrived.
    fn poll(&mut self) -> bool {
        let Some(running) = &self.running else {
            return false;
        };
        let outcome = match running.result.try_recv() {
            Err(TryRecvError::Empty) => return false,
            Ok(outcome) => outcome,
            Err(TryRecvError::Disconnected) => Err("the job ended without a result".into()),
        };
        self.running = None;
        match outcome {
            Ok(result) => {
                self.last = Some(Arc::new(result));
                self.error = None;
            }
            Err(error) => self.error = Some(error),
        }
        true
    }

    fn view(&self, stale: bool) -> JobView<T> {
        JobView {
            running: self.running.as_ref().map(|r| Progress {
                calibrating: r.calibrating.load(Relaxed),
                done: r.done.load(Relaxed),
                total: r.total.load(Relaxed),
            }),
            last: self.last.clone(),
            error: self.error.clone(),
            stale,
        }
    }
}

/// The costs, calibrated by the first job that needs them; later jobs wait for that one.
fn calibrated(costs: &Mutex<Option<Calibration>>) -> Result<Calibration, String> {
    let mut costs = costs.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = *costs {
        return Ok(c);
    }
    let measured = calibrate().map_err(|e| e.to_string())?;
    *costs = Some(measured);
    Ok(measured)
}

/// The engine's what-if jobs.
#[derive(Default)]
pub struct Worker {
    costs: Arc<Mutex<Option<Calibration>>>,
    sweep: Slot<SweepResult>,
    advice: Slot<AdviceResult>,
    /// The last sweep asked for, run again when the settings in force change.
    request: Option<Request>,
    /// Asked for while a sweep ran: started when it ends.
    pending: bool,
    /// When the settings in force last changed.
    changed_at: Option<Instant>,
    /// The settings the last sweep started on.
    swept_on: Option<Settings>,
}

impl Worker {
    /// Sweeps `request` on `applied` (after the running sweep, if one runs).
    pub fn sweep(&mut self, request: Request, applied: &Settings) {
        self.request = Some(request);
        self.pending = true;
        self.start_pending(applied);
    }

    fn start_pending(&mut self, applied: &Settings) {
        let Some(request) = self.request.clone().filter(|_| self.pending) else {
            return;
        };
        if self.sweep.running.is_some() {
            return;
        }
        self.pending = false;
        self.swept_on = Some(applied.clone());
        let settings = applied.clone();
        self.sweep
            .start(&self.costs, "gracetrace-whatif", move |costs, progress| {
                sweep(&request, &settings, costs, progress)
            });
    }

    /// Runs the advisor on `applied`; `price` per million spans for the costs it prints.
    pub fn advise(&mut self, applied: &Settings, price: Option<f64>) {
        let settings = applied.clone();
        self.advice
            .start(&self.costs, "gracetrace-advise", move |costs, _| {
                advise(&settings, costs, price)
            });
    }

    /// The settings in force changed: the last sweep runs again once they are still.
    pub fn settings_changed(&mut self) {
        self.changed_at = Some(Instant::now());
    }

    /// Takes finished results and starts the sweep again when the settings in force have
    /// moved away from those of the last sweep and been still for [`RESWEEP_AFTER`].
    pub fn tick(&mut self, applied: &Settings) {
        self.sweep.poll();
        self.advice.poll();
        let settled = self
            .changed_at
            .is_none_or(|at| at.elapsed() >= RESWEEP_AFTER);
        let moved = self.swept_on.as_ref().is_some_and(|s| s != applied);
        if settled && moved && self.sweep.running.is_none() {
            self.pending = true;
        }
        if settled {
            self.start_pending(applied);
        }
    }

    pub fn view(&self, applied: &Settings) -> View {
        let stale = |base: Option<&Settings>| base.is_some_and(|b| b != applied);
        View {
            sweep: self
                .sweep
                .view(stale(self.sweep.last.as_ref().map(|l| &l.base))),
            advice: self
                .advice
                .view(stale(self.advice.last.as_ref().map(|l| &l.base))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::TEST_COSTS as COSTS;

    fn axis(key: &'static str, from: f64, to: f64, steps: usize) -> Axis {
        Axis {
            key,
            from,
            to,
            steps,
        }
    }

    /// A short scenario whose small queues drop: 3 s of 200 requests/s to a slow backend.
    fn slow_backend() -> Settings {
        let mut s = Settings::default();
        for (k, v) in [
            ("workload.duration_s", "3"),
            ("workload.rate_per_s", "200"),
            ("collector.latency_ms", "500"),
        ] {
            s.set(k, v, Source::CommandLine).unwrap();
        }
        s
    }

    #[test]
    fn a_range_over_decades_is_geometric_and_parses_as_the_cli_would() {
        let r = axis("batch.max_queue_size", 64.0, 32768.0, 10);
        assert!(r.geometric());
        let vary = Vary::parse(&r.vary_arg()).unwrap();
        assert_eq!(vary.values.len(), 10, "{:?}", vary.values);
        assert_eq!(vary.values.first().map(String::as_str), Some("64"));
        assert_eq!(vary.values.last().map(String::as_str), Some("32768"));
        let r = axis("tracing.sample_rate", 0.2, 1.0, 5);
        assert!(!r.geometric());
        assert_eq!(
            Vary::parse(&r.vary_arg()).unwrap().values,
            ["0.2", "0.4", "0.6", "0.8", "1"]
        );
        let one = axis("batch.schedule_delay_ms", 100.0, 100.0, 4);
        assert_eq!(Vary::parse(&one.vary_arg()).unwrap().values, ["100"]);
    }

    #[test]
    fn default_ranges_stay_in_the_knobs_bounds() {
        let s = Settings::default();
        for key in knobs() {
            let (from, to) = default_range(key, &s).unwrap();
            let (min, max) = knobs::find(key).unwrap().bounds.numeric().unwrap();
            assert!(
                min <= from && from <= to && to <= max,
                "{key}: {from}..{to}"
            );
        }
        assert!(knobs().contains(&"shutdown.grace_ms"));
        assert!(!knobs().contains(&"tracing.semantics"));
    }

    #[test]
    fn a_small_queue_drops_in_the_sweep_and_a_cell_applies_on_top_of_other_settings() {
        let s = slow_backend();
        let r = Request::one(axis("batch.max_queue_size", 64.0, 65536.0, 4));
        let result = sweep(&r, &s, COSTS, &|_, _| {}).unwrap();
        assert!(result.sigterm_assumed && result.sigterm_at_s == 3.0);
        assert_eq!(result.points.len(), 4);
        let (small, big) = (&result.points[0], &result.points[3]);
        assert!(small.dropped_queue_full > 0 && big.dropped_queue_full == 0);
        assert_eq!(result.current, Some(2048.0));
        let mut now = s.clone();
        now.tracing.sample_rate = 0.5;
        let applied = result.cell_settings(0, &now).unwrap().unwrap();
        assert_eq!(applied.batch.max_queue_size, 64);
        assert_eq!(
            applied.batch.max_export_batch_size, 64,
            "the batch followed"
        );
        assert_eq!(applied.tracing.sample_rate, 0.5, "the rest is the window's");
        assert_eq!(
            applied.shutdown.at_s, None,
            "the assumed SIGTERM stays in the sim"
        );
        assert!(result.cell_settings(9, &now).is_none());
    }

    #[test]
    fn two_knobs_sweep_their_grid_and_a_cell_applies_both() {
        let mut s = slow_backend();
        s.tracing.sample_rate = 0.5;
        s.batch.max_queue_size = 4096;
        let r = Request {
            first: axis("batch.max_queue_size", 64.0, 65536.0, 4),
            second: Some(axis("tracing.sample_rate", 0.25, 1.0, 4)),
        };
        let result = sweep(&r, &s, COSTS, &|_, _| {}).unwrap();
        assert_eq!(result.columns, ["64", "645", "6502", "65536"]);
        assert_eq!(result.rows, ["0.25", "0.5", "0.75", "1"]);
        assert_eq!(result.points.len(), 16);
        // The caption's `gracetrace sweep --vary .. --vary ..` runs the same values.
        let cli: Vec<Vec<String>> = (r.vary_args().iter())
            .map(|arg| Vary::parse(arg).unwrap().values)
            .collect();
        assert_eq!(cli, [result.columns.clone(), result.rows.clone()]);
        // Column 1, row 2: the second knob changes fastest.
        let cell = &result.points[result.index(1, 2).unwrap()];
        assert_eq!(
            (cell.value.as_str(), cell.second.as_deref()),
            ("645", Some("0.75"))
        );
        assert_eq!((cell.x, cell.y), (645.0, Some(0.75)));
        assert_eq!(result.index(4, 0), None);
        assert_eq!(result.index(0, 4), None);
        // More sampled spans, more to drop: at queue 64, a rate of 1 drops more than 0.25.
        let (thin, full) = (&result.points[0], &result.points[3]);
        assert!(thin.sampled < full.sampled, "{thin:?} {full:?}");
        assert!(full.dropped_queue_full > thin.dropped_queue_full);
        // 4096 lies between 645 and 6502 (nearer 6502); 0.5 is a row.
        assert_eq!(
            result.current_cell(),
            Some((result.index(2, 1).unwrap(), false))
        );
        let applied = result
            .cell_settings(result.index(0, 3).unwrap(), &s)
            .unwrap()
            .unwrap();
        assert_eq!(applied.batch.max_queue_size, 64);
        assert_eq!(applied.tracing.sample_rate, 1.0);
        assert_eq!(
            applied.batch.max_export_batch_size, 64,
            "the batch followed"
        );
        let mut now = s.clone();
        now.tracing.sample_rate = 0.75;
        now.batch.max_queue_size = 645;
        let exact = SweepResult {
            base: now.clone(),
            current: Some(645.0),
            current_second: Some(0.75),
            ..result.clone()
        };
        assert_eq!(
            exact.current_cell(),
            Some((exact.index(1, 2).unwrap(), true))
        );
        let outside = SweepResult {
            current_second: Some(0.1),
            ..result
        };
        assert_eq!(outside.current_cell(), None, "0.1 is below the rows");
    }

    #[test]
    fn a_request_over_the_cap_or_with_one_knob_twice_is_refused_with_the_reason() {
        let big = Request {
            first: axis("batch.max_queue_size", 64.0, 65536.0, 30),
            second: Some(axis("tracing.sample_rate", 0.1, 1.0, 30)),
        };
        let why = big.refused().unwrap();
        assert!(why.starts_with("30 x 30 = 900 cells: at most 400"), "{why}");
        assert_eq!(
            sweep(&big, &Settings::default(), COSTS, &|_, _| panic!("no run")).unwrap_err(),
            why
        );
        let twice = Request {
            second: Some(big.first.clone()),
            ..big.clone()
        };
        assert!(twice.refused().unwrap().contains("chosen twice"));
        let upside_down = Request::one(axis("tracing.sample_rate", 1.0, 0.5, 3));
        assert!(
            upside_down
                .refused()
                .unwrap()
                .contains("from must not be above to")
        );
        assert_eq!(
            Request::one(big.first).refused(),
            None,
            "30 values of one knob"
        );
    }
}
