//! Logging set-up. rsipstack logs whole SIP messages (caller numbers, PINs, addresses) at
//! debug and info level, so its target is always switched off, whatever `RUST_LOG` says.

use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, for log shippers (journald, Loki, Elasticsearch).
    Json,
}

/// Installs the global subscriber: `RUST_LOG` (default `info`) plus `rsipstack=off`.
pub fn init(format: LogFormat) {
    let base = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(format!("{base},rsipstack=off"))
        .unwrap_or_else(|_| EnvFilter::new("info,rsipstack=off"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_ansi(false)
            .init(),
    }
}
