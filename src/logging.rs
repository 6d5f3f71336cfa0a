//! Logging set-up. rsipstack logs whole SIP messages (caller numbers, PINs, addresses) at
//! debug and info level, so its target is always switched off, whatever `RUST_LOG` says.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber: `RUST_LOG` (default `info`) plus `rsipstack=off`.
pub fn init() {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(format!("{base},rsipstack=off"))
        .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=off"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
