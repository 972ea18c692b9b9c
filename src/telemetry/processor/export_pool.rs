//! The js profile's export threads, kept from one export to the next.
//!
//! Upstream every export is a promise, and as many run at once as were started: a
//! `forceFlush` sends every batch together, and a timer export the processor stopped
//! waiting for carries on beside the next. Here each export runs on a thread. Starting an
//! OS thread per export (1,000 a second under the throughput probe) is work the Node
//! process does not do: every start maps a stack and every end frees one, on the cores
//! the request threads run on. So a thread that finished an export waits for the next
//! instead of ending. The pool grows whenever every thread is busy, so an export never
//! waits for another, and its threads end when the processor is dropped.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use super::lock;

type Job = Box<dyn FnOnce() + Send>;

pub(super) struct ExportPool {
    jobs: Sender<Job>,
    /// Every thread waits here between jobs (the mutex lets them share one receiver).
    next: Arc<Mutex<Receiver<Job>>>,
    /// Threads waiting for a job, or about to: a job is sent only to a thread counted here.
    idle: Arc<AtomicUsize>,
}

impl ExportPool {
    pub(super) fn new() -> ExportPool {
        let (jobs, next) = channel();
        ExportPool {
            jobs,
            next: Arc::new(Mutex::new(next)),
            idle: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Runs `job` now on a waiting thread, or on a new one; false (and `job` dropped) when
    /// the OS refused a new thread.
    pub(super) fn run(&self, job: impl FnOnce() + Send + 'static) -> bool {
        let job: Job = Box::new(job);
        // Claim a waiting thread: each thread counts itself once per wait, so a claimed
        // thread is there to take the job.
        let job = if self
            .idle
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            match self.jobs.send(job) {
                Ok(()) => return true,
                // The receiver lives as long as `self`; kept for completeness.
                Err(refused) => refused.0,
            }
        } else {
            job
        };
        let (next, idle) = (self.next.clone(), self.idle.clone());
        std::thread::Builder::new()
            .name("gracetrace-js-export".into())
            .spawn(move || {
                job();
                loop {
                    idle.fetch_add(1, SeqCst);
                    // Err: the pool was dropped with the processor, so no job will come.
                    let Ok(job) = lock(&next).recv() else { return };
                    job();
                }
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;
    use std::time::Duration;

    /// Jobs that block until all have started run at once (none waits for another),
    /// and a later job reuses a thread instead of starting one.
    #[test]
    fn jobs_run_side_by_side_and_threads_are_reused() {
        let pool = ExportPool::new();
        let (started, starts) = channel();
        let (release, released) = channel::<()>();
        let released = Arc::new(Mutex::new(released));
        for _ in 0..3 {
            let (started, released) = (started.clone(), released.clone());
            assert!(pool.run(move || {
                started.send(std::thread::current().id()).expect("send");
                let _ = lock(&released).recv();
            }));
        }
        let first: Vec<_> = (0..3)
            .map(|_| {
                starts
                    .recv_timeout(Duration::from_secs(30))
                    .expect("all three start")
            })
            .collect();
        for _ in 0..3 {
            release.send(()).expect("release");
        }
        // Poll until the three threads wait again, then one more job: an old thread runs it.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while pool.idle.load(SeqCst) < 3 {
            assert!(
                std::time::Instant::now() < deadline,
                "threads never came back"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(pool.run(move || started.send(std::thread::current().id()).expect("send")));
        let again = starts.recv_timeout(Duration::from_secs(30)).expect("ran");
        assert!(first.contains(&again), "a new thread ran the fourth job");
    }
}
