//! The `load` section while the app runs, for a watcher that draws it (the window): what
//! the load has published so far ([`LoadFeed`]) counted into `record::load_timeline`, the
//! same way the final section counts every request. Built only when the watcher asks
//! ([`super::Watcher::live_load`]); the final section, with every trace followed, replaces
//! it at the end.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use super::follow;
use super::load::{LoadFeed, LoadPlan};
use crate::record::load::LoadSection;
use crate::record::load_timeline::Timeline;

/// The section being built from the load's news.
pub struct LiveLoad {
    feed: LoadFeed,
    url: String,
    method: String,
    routing_lag: Duration,
    /// Written only by the watch loop's thread, through `&self` (the loop's progress
    /// callback is a `Fn`).
    state: RefCell<State>,
}

#[derive(Default)]
struct State {
    timeline: Timeline,
    traffic: Option<(Instant, Instant)>,
    sigterm_at: Option<Instant>,
}

impl LiveLoad {
    pub fn new(feed: LoadFeed, plan: &LoadPlan) -> LiveLoad {
        LiveLoad {
            feed,
            url: plan.target.url.text.clone(),
            method: plan.target.method.to_string(),
            routing_lag: plan.routing_lag,
            state: RefCell::default(),
        }
    }

    /// The section so far, times in ms since `started` (the app's start); `None` until
    /// the app is ready and the traffic has started.
    pub fn section(&self, started: Instant) -> Option<LoadSection> {
        let ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
        let news = self.feed.take();
        let mut state = self.state.borrow_mut();
        state.traffic = state.traffic.or(news.traffic);
        state.sigterm_at = state.sigterm_at.or(news.sigterm_at);
        let sigterm_ms = state.sigterm_at.map(ms);
        for sent in news.sent {
            state.timeline.sent(ms(sent));
        }
        for attempt in &news.ended {
            // Whether the app's end cut it is known only at the end: as the load saw it.
            let row = follow::request(attempt, &ms, None, sigterm_ms);
            if let (Some(ended_ms), Some(outcome)) = (row.ended_ms, row.outcome) {
                state.timeline.ended(ended_ms, outcome, row.latency_ms);
            }
        }
        let (ready_at, start) = state.traffic?;
        let header = LoadSection {
            url: self.url.clone(),
            method: self.method.clone(),
            ready_ms: ms(ready_at),
            traffic_start_ms: ms(start),
            routing_end_ms: state.sigterm_at.map(|at| ms(at + self.routing_lag)),
            ..LoadSection::default()
        };
        Some(state.timeline.so_far(header, ms(Instant::now())))
    }
}
