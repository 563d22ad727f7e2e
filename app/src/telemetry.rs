//! Log output: one subscriber for the process, configured by `[log]` and `RUST_LOG`.

use crate::config::{LogFormat, LogSection};
use std::io::IsTerminal as _;
use tracing_subscriber::EnvFilter;

/// warp's own per-request trace events duplicate acmeport's access line; they are off
/// unless the filter names warp itself.
const QUIET_WARP: &str = "warp::filters::trace=off";

/// The filter in force: `RUST_LOG` when set, else `[log] filter`.
fn filter(section: &LogSection) -> EnvFilter {
    let text = std::env::var("RUST_LOG").unwrap_or_else(|_| section.filter.clone());
    let text = if text.contains("warp") {
        text
    } else {
        format!("{text},{QUIET_WARP}")
    };
    EnvFilter::try_new(&text).unwrap_or_else(|e| {
        eprintln!("invalid log filter {text:?} ({e}); using `info`");
        EnvFilter::new(format!("info,{QUIET_WARP}"))
    })
}

/// Installs the global subscriber, writing to standard error. Does nothing when one is
/// installed already (tests start several applications in one process).
///
/// Colour codes only go to a terminal: in a file or a journal they are noise, and
/// writing them costs a good part of a request's log line.
pub fn init(section: &LogSection) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(section))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match section.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
