//! A fleet's load balancer in virtual time: the scenario's one arrival schedule, each
//! arrival sent to a replica in service. Replicas take turns: the arrival numbered `i`
//! goes to replica `i mod replicas` while it is in service; when it is not (SIGTERMed,
//! or its replacement not yet started), to the `i mod m`-th of the `m` replicas in
//! service; when none is, to its own replica, which refuses it as a lone runner refuses
//! arrivals after its routing lag. A replica is in service from when it is ready until
//! its SIGTERM plus the platform's routing lag, times known before the run starts, so
//! routing depends on nothing a replica does, and each replica reads its own arrivals
//! as a lone runner reads its schedule.

use std::collections::VecDeque;
use std::time::Duration;

use crate::workload::arrival::{Due, Schedule};

/// One arrival sent to a replica: its index, its time, and the schedule's batch it
/// came in (`Due::first`), so a replica takes a burst in one step as a lone runner does.
#[derive(Clone, Copy, Debug)]
pub(super) struct Routed {
    pub(super) index: u64,
    pub(super) at: Duration,
    pub(super) batch: u64,
}

/// When a replica may take arrivals.
#[derive(Clone, Copy, Debug)]
pub(super) struct Window {
    pub(super) slot: usize,
    pub(super) ready: Duration,
    /// SIGTERM plus the routing lag; `None`: in service to the end.
    pub(super) routing_end: Option<Duration>,
    /// After this nothing more is sent to it (its replacement is in service).
    pub(super) horizon: Duration,
}

pub(super) struct Router {
    schedule: Schedule,
    queues: Vec<VecDeque<Routed>>,
    windows: Vec<Window>,
    slots: usize,
    /// When a replica enters (`true`) or leaves service, earliest first.
    changes: Vec<(Duration, bool, usize)>,
    next_change: usize,
    /// The replicas in service now, by number.
    in_service: Vec<usize>,
    /// The replica in service for each slot, if any.
    serving: Vec<Option<usize>>,
    /// Arrivals taken from the schedule so far.
    pub(super) routed: u64,
}

impl Router {
    /// `windows[s]` for `s < slots` are the first replicas, one per slot.
    pub(super) fn new(schedule: Schedule, windows: Vec<Window>, slots: usize) -> Router {
        let mut changes: Vec<(Duration, bool, usize)> = Vec::new();
        for (replica, w) in windows.iter().enumerate() {
            changes.push((w.ready, true, replica));
            if let Some(end) = w.routing_end {
                changes.push((end, false, replica));
            }
        }
        // At one instant a replica enters before it leaves: an empty window stays empty.
        changes.sort_by_key(|&(at, enters, replica)| (at, !enters, replica));
        Router {
            schedule,
            queues: vec![VecDeque::new(); windows.len()],
            windows,
            slots,
            changes,
            next_change: 0,
            in_service: Vec::new(),
            serving: vec![None; slots],
            routed: 0,
        }
    }

    /// When traffic ends.
    pub(super) fn end(&self) -> Duration {
        self.schedule.end()
    }

    /// When `replica`'s next arrival is due, routing the schedule ahead as far as that
    /// takes; `None` when nothing more will come to it.
    pub(super) fn next_at(&mut self, replica: usize) -> Option<Duration> {
        loop {
            if let Some(first) = self.queues[replica].front() {
                return Some(first.at);
            }
            let due = self.schedule.peek()?;
            if due.at >= self.windows[replica].horizon {
                return None;
            }
            self.schedule.advance();
            self.route(due);
        }
    }

    /// `replica`'s next batch if it is due by `now`, into `into`.
    pub(super) fn take(&mut self, replica: usize, now: Duration, into: &mut Vec<u64>) {
        let queue = &mut self.queues[replica];
        let Some(batch) = queue.front().filter(|r| r.at <= now).map(|r| r.batch) else {
            return;
        };
        while let Some(r) = queue.front().filter(|r| r.batch == batch) {
            into.push(r.index);
            queue.pop_front();
        }
    }

    /// Arrivals the schedule still holds, taken now: no replica is left to take them.
    pub(super) fn rest(&mut self) -> u64 {
        let rest: u64 = self.schedule.by_ref().map(|due| due.count as u64).sum();
        self.routed += rest;
        rest
    }

    fn route(&mut self, due: Due) {
        self.catch_up(due.at);
        self.routed += due.count as u64;
        for index in due.first..due.first + due.count as u64 {
            let slot = (index % self.slots as u64) as usize;
            let m = self.in_service.len() as u64;
            let replica = match self.serving[slot] {
                Some(replica) => replica,
                None if m > 0 => self.in_service[(index % m) as usize],
                None => slot,
            };
            self.queues[replica].push_back(Routed {
                index,
                at: due.at,
                batch: due.first,
            });
        }
    }

    /// Applies the service changes due by `at`.
    fn catch_up(&mut self, at: Duration) {
        while let Some(&(when, enters, replica)) = self.changes.get(self.next_change) {
            if when > at {
                break;
            }
            self.next_change += 1;
            let slot = self.windows[replica].slot;
            let position = self.in_service.binary_search(&replica);
            match (enters, position) {
                (true, Err(p)) => {
                    self.in_service.insert(p, replica);
                    self.serving[slot] = Some(replica);
                }
                (false, Ok(p)) => {
                    self.in_service.remove(p);
                    if self.serving[slot] == Some(replica) {
                        self.serving[slot] = None;
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Settings;

    fn window(slot: usize, ready_s: u64, routing_end_s: Option<u64>) -> Window {
        Window {
            slot,
            ready: Duration::from_secs(ready_s),
            routing_end: routing_end_s.map(Duration::from_secs),
            horizon: Duration::MAX,
        }
    }

    /// Every replica's arrivals, each taken as the replica would take them.
    fn taken(router: &mut Router, replicas: usize) -> Vec<Vec<(u64, Duration)>> {
        let mut out = vec![Vec::new(); replicas];
        for (replica, got) in out.iter_mut().enumerate() {
            while let Some(at) = router.next_at(replica) {
                let mut batch = Vec::new();
                router.take(replica, at, &mut batch);
                got.extend(batch.into_iter().map(|i| (i, at)));
            }
        }
        out
    }

    /// Three replicas: the first SIGTERMed with its routing ending at 4 s, its
    /// replacement ready at 6 s. In service, turns by arrival number; the share of the
    /// one out of service spread over the others; none lost, none twice.
    #[test]
    fn replicas_take_turns_and_a_gone_ones_share_goes_to_the_others() {
        let mut w = Settings::default().workload;
        (w.duration_s, w.rate_per_s) = (10.0, 50.0);
        let windows = vec![
            window(0, 0, Some(4)),
            window(1, 0, None),
            window(2, 0, None),
            window(0, 6, None),
        ];
        let mut router = Router::new(Schedule::new(&w), windows, 3);
        let got = taken(&mut router, 4);
        let total: usize = got.iter().map(Vec::len).sum();
        assert_eq!(total as u64, router.routed);
        let mut all: Vec<u64> = got.iter().flatten().map(|(i, _)| *i).collect();
        all.sort_unstable();
        assert!(
            all.windows(2).all(|p| p[1] == p[0] + 1),
            "each arrival once"
        );
        let four = Duration::from_secs(4);
        let six = Duration::from_secs(6);
        for (replica, arrivals) in got.iter().enumerate().take(3) {
            let early = arrivals.iter().filter(|(_, at)| *at < four);
            assert!(early.clone().count() > 20);
            assert!(
                early.clone().all(|(i, _)| *i % 3 == replica as u64),
                "turns"
            );
        }
        assert!(
            got[0].iter().all(|(_, at)| *at < four),
            "out of service at 4 s"
        );
        assert!(got[3].iter().all(|(_, at)| *at >= six), "ready at 6 s");
        let between = |r: usize| {
            got[r]
                .iter()
                .filter(|(_, at)| *at >= four && *at < six)
                .count()
        };
        assert!(between(1) > 0 && between(2) > 0, "slot 0's share spread");
        assert!(
            got[1]
                .iter()
                .any(|(i, at)| *at >= four && *at < six && i % 3 == 0)
        );
    }
}
