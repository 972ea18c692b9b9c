//! The user's own app, run under the probe ("served by your app"), drawn from the probe's
//! report in the places the simulated runner's views take: the command line, URL and Start
//! button (`command`), the counts (`counters`), the export requests as they arrived
//! (`exports`), the span queue's estimate (`queue`), the shutdown timeline (`timeline`)
//! and the app's own output (`log`). With a URL, the traffic sent to it: requests per
//! 100 ms by outcome (`requests`), latency over time (`latency`, both with the `signals`
//! lines), the lost traces (`lost`); and the runs compared (`compare`).

pub mod command;
pub mod compare;
pub mod counters;
pub mod exports;
pub mod latency;
pub mod log;
pub mod lost;
pub mod queue;
pub mod requests;
pub mod signals;
pub mod timeline;
