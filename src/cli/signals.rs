//! SIGINT and SIGTERM, the two ways a terminal or a supervisor stops a command, caught
//! from the moment [`StopSignals::catch`] returns (not when someone first waits), so a
//! supervisor that signals as soon as it reads our first line gets our handling rather
//! than the default action of the signal.

use std::sync::mpsc::{Receiver, channel};

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The two signals, caught.
pub struct StopSignals {
    runtime: tokio::runtime::Runtime,
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    pub fn catch() -> std::io::Result<StopSignals> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let (interrupt, terminate) = {
            let _inside = runtime.enter();
            (
                signal(SignalKind::interrupt())?,
                signal(SignalKind::terminate())?,
            )
        };
        Ok(StopSignals {
            runtime,
            interrupt,
            terminate,
        })
    }

    /// Blocks until one of them arrives.
    pub fn wait(mut self) {
        self.runtime.block_on(async {
            tokio::select! {
                _ = self.interrupt.recv() => {}
                _ = self.terminate.recv() => {}
            }
        });
    }
}

/// A channel that gets a message when the user presses Enter (or stdin ends) or this
/// process gets SIGINT or SIGTERM: each means "now".
pub fn enter_or_signal() -> std::io::Result<Receiver<()>> {
    let (tx, rx) = channel();
    let signals = StopSignals::catch()?;
    let by_signal = tx.clone();
    std::thread::Builder::new()
        .name("gracetrace-signals".into())
        .spawn(move || {
            signals.wait();
            let _ = by_signal.send(());
        })?;
    std::thread::Builder::new()
        .name("gracetrace-enter".into())
        .spawn(move || {
            let mut line = String::new();
            // A line or the end of stdin: either way the user asks for it now.
            let _ = std::io::stdin().read_line(&mut line);
            let _ = tx.send(());
        })?;
    Ok(rx)
}
