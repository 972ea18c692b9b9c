//! Where a simulated runner's arrivals come from: its own schedule (a lone runner), every
//! `of`-th arrival of it (one of `of` runners taking turns, which a fleet's replicas are
//! compared against), or a fleet's router. Each gives the arrivals of one of the
//! schedule's batches (`Due`) at a time, as a lone runner takes them.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use super::route::Router;
use crate::workload::arrival::Schedule;

pub(super) enum Arrivals {
    Own(Schedule),
    /// The arrivals numbered `index`, `index + of`, `index + 2 of`, ...
    Share {
        schedule: Schedule,
        of: u64,
        index: u64,
        /// The next batch with one of them: its time and its arrivals.
        next: Option<(Duration, Vec<u64>)>,
    },
    Routed {
        router: Rc<RefCell<Router>>,
        replica: usize,
    },
}

impl Arrivals {
    /// When the next batch is due; `None` when no more will come.
    pub(super) fn next_at(&mut self) -> Option<Duration> {
        match self {
            Arrivals::Own(schedule) => schedule.peek().map(|due| due.at),
            Arrivals::Share {
                schedule,
                of,
                index,
                next,
            } => {
                while next.is_none() {
                    let due = schedule.next()?;
                    let mine: Vec<u64> = (due.first..due.first + due.count as u64)
                        .filter(|i| i % *of == *index)
                        .collect();
                    if !mine.is_empty() {
                        *next = Some((due.at, mine));
                    }
                }
                next.as_ref().map(|(at, _)| *at)
            }
            Arrivals::Routed { router, replica } => router.borrow_mut().next_at(*replica),
        }
    }

    /// The next batch's arrivals, into `into`, if it is due by `now`.
    pub(super) fn take(&mut self, now: Duration, into: &mut Vec<u64>) {
        match self {
            Arrivals::Own(schedule) => {
                if let Some(due) = schedule.peek().filter(|d| d.at <= now) {
                    schedule.advance();
                    into.extend(due.first..due.first + due.count as u64);
                }
            }
            Arrivals::Share { next, .. } => {
                if let Some((_, mine)) = next.take_if(|(at, _)| *at <= now) {
                    into.extend(mine);
                }
            }
            Arrivals::Routed { router, replica } => router.borrow_mut().take(*replica, now, into),
        }
    }

    /// When traffic ends.
    pub(super) fn end(&self) -> Duration {
        match self {
            Arrivals::Own(schedule) | Arrivals::Share { schedule, .. } => schedule.end(),
            Arrivals::Routed { router, .. } => router.borrow().end(),
        }
    }
}
