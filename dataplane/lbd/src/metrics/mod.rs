//! The Prometheus `/metrics` endpoint, in three parts:
//!
//! * gathering (`gather.rs`): a scrape reads what the workers and the
//!   control plane already keep — per-worker counters, port statistics from
//!   the devices, the current snapshot, the neighbour table, the workers'
//!   latency histograms — into the plain [`MetricInputs`] (`inputs.rs`);
//! * rendering (`render.rs`): pure, [`MetricInputs`] to the text exposition
//!   format; what the unit tests exercise (a running daemon needs DPDK);
//! * serving (`http.rs`): a small bounded HTTP server on its own thread
//!   (`GET /metrics`, `GET /`) that exits once the daemon is stopping.
//!
//! Nothing is registered or updated on the packet path: scrapes are rare
//! (every few seconds) and pay the whole cost. Each worker counter's metric
//! family is declared next to the counter (`lbcore::counters`).

mod gather;
pub mod http;
mod inputs;
mod render;

use std::sync::Arc;

use tracing::info;

use crate::shared::Shared;

pub use gather::{gather, kernel_samples};
pub use render::render;

/// Serve `/metrics` on `listen` (e.g. `"127.0.0.1:9300"`) from a thread of
/// its own until `shared.stopping()`, with the bounds of [`http::LIMITS`].
/// Binding happens before this returns, so an address in use is reported
/// to the caller. Each scrape also reports the HTTP server's own counters
/// (connections refused, timed out, ...).
pub fn spawn(listen: &str, shared: Arc<Shared>) -> std::io::Result<std::thread::JoinHandle<()>> {
    let server = http::bind(listen, http::LIMITS)?;
    let shown = server
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listen.to_owned());
    let stats = server.stats();
    let handle = std::thread::Builder::new()
        .name("lbd-metrics".to_owned())
        .spawn(move || {
            server.serve(&|| shared.stopping(), &|| {
                let mut text = render(&gather(&shared));
                text.push_str(&stats.render());
                text
            });
        })?;
    info!("metrics: serving http://{shown}/metrics");
    Ok(handle)
}
