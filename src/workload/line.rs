//! The line of requests waiting for a serving slot.
//!
//! A bounded queue of waiting requests (whatever the caller keeps of one: its arrival time
//! and index) that the serving slots take from, with the one extra
//! operation a serverless platform needs: at SIGTERM the platform's router takes back the
//! requests that have not started ([`WaitingLine::hand_back`]) and sends them to another
//! runner, so this runner only finishes what it is serving.
//!
//! A slot waiting for work does not hold the line's lock: the arrival thread and
//! `hand_back` never wait behind an idle slot.

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// Why a request could not join the line.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Every slot is busy and `capacity` requests are already waiting.
    Full,
    /// The line is closed: the runner takes no more requests.
    Closed,
}

struct State<T> {
    /// Waiting requests, oldest first.
    waiting: VecDeque<T>,
    /// Slots inside [`WaitingLine::take`] right now. A request is accepted while the
    /// requests waiting are fewer than `capacity` plus these idle slots: with capacity 0 the
    /// line only hands a request to a slot that is free now (a rendezvous).
    idle_slots: usize,
    closed: bool,
}

/// A bounded waiting line shared by the arrival thread and the serving slots.
pub struct WaitingLine<T> {
    capacity: usize,
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> WaitingLine<T> {
    pub fn new(capacity: usize) -> WaitingLine<T> {
        WaitingLine {
            capacity,
            state: Mutex::new(State {
                waiting: VecDeque::new(),
                idle_slots: 0,
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a request, if there is room for it: `capacity` waiting plus one per idle
    /// slot, or only an idle slot when `only_to_a_free_slot`.
    pub fn offer(&self, arrived: T, only_to_a_free_slot: bool) -> Result<(), Refusal> {
        let mut state = self.lock();
        if state.closed {
            return Err(Refusal::Closed);
        }
        let capacity = if only_to_a_free_slot {
            0
        } else {
            self.capacity
        };
        if state.waiting.len() >= capacity.saturating_add(state.idle_slots) {
            return Err(Refusal::Full);
        }
        state.waiting.push_back(arrived);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    /// The next waiting request. Waits while the line is open and empty,
    /// waking every `poll` so the caller can notice a killed runner; `None` once the line
    /// is closed and empty, or when `stop()` says so.
    pub fn take(&self, poll: Duration, stop: impl Fn() -> bool) -> Option<T> {
        let mut state = self.lock();
        state.idle_slots += 1;
        let taken = loop {
            if stop() {
                break None;
            }
            if let Some(arrived) = state.waiting.pop_front() {
                break Some(arrived);
            }
            if state.closed {
                break None;
            }
            state = self
                .ready
                .wait_timeout(state, poll)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        state.idle_slots -= 1;
        taken
    }

    /// No more requests join; the slots finish what is waiting, then stop.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Takes back every request still waiting (the platform routes them to another
    /// runner). Returns how many there were. The line stays open: under a routing lag,
    /// new requests still arrive.
    pub fn hand_back(&self) -> usize {
        let mut state = self.lock();
        let returned = state.waiting.len();
        state.waiting.clear();
        returned
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const POLL: Duration = Duration::from_millis(5);

    #[test]
    fn a_full_line_refuses_and_a_closed_one_says_so() {
        let line = WaitingLine::new(2);
        let now = Instant::now();
        assert_eq!(line.offer(now, false), Ok(()));
        assert_eq!(line.offer(now, false), Ok(()));
        assert_eq!(line.offer(now, false), Err(Refusal::Full));
        // With no idle slot, "only to a free slot" refuses even an empty line.
        assert_eq!(line.take(POLL, || false), Some(now));
        assert_eq!(line.offer(now, true), Err(Refusal::Full));
        line.close();
        assert_eq!(line.offer(now, false), Err(Refusal::Closed));
        // What was waiting before the close is still served, then the slots stop.
        assert_eq!(line.take(POLL, || false), Some(now));
        assert_eq!(line.take(POLL, || false), None);
    }

    #[test]
    fn hand_back_returns_exactly_the_waiting_requests() {
        let line = WaitingLine::new(10);
        let now = Instant::now();
        for _ in 0..7 {
            line.offer(now, false).unwrap();
        }
        assert_eq!(line.take(POLL, || false), Some(now));
        assert_eq!(line.hand_back(), 6);
        assert_eq!(line.hand_back(), 0, "nothing is left waiting");
        line.close();
        assert_eq!(line.take(POLL, || false), None);
    }

    #[test]
    fn a_zero_capacity_line_hands_requests_only_to_an_idle_slot() {
        let line = std::sync::Arc::new(WaitingLine::new(0));
        let now = Instant::now();
        assert_eq!(line.offer(now, false), Err(Refusal::Full));
        let slot = {
            let line = line.clone();
            std::thread::spawn(move || line.take(POLL, || false))
        };
        // Once the slot is waiting, one request (and only one) is handed to it.
        let deadline = Instant::now() + Duration::from_secs(30);
        while line.offer(now, false).is_err() {
            assert!(
                Instant::now() < deadline,
                "the idle slot never took a request"
            );
            std::thread::yield_now();
        }
        assert_eq!(slot.join().unwrap(), Some(now));
    }
}
