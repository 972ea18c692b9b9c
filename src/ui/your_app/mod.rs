//! The user's own app, run under the probe ("served by your app"), drawn from the probe's
//! report in the places the simulated runner's views take: the command line and its
//! Start button (`command`), the counts (`counters`), the export requests as they arrived
//! (`exports`), the span queue's estimate (`queue`), the shutdown timeline (`timeline`)
//! and the app's own output (`log`).

pub mod command;
pub mod counters;
pub mod exports;
pub mod log;
pub mod queue;
pub mod timeline;
