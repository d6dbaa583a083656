//! Logging setup: `tracing` to stderr (journald keeps it), text or JSON, `RUST_LOG` filters.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Log at `info` unless `RUST_LOG` says otherwise.
pub fn init(format: LogFormat) {
    init_with("info", format);
}

/// Log at `default_level` unless `RUST_LOG` says otherwise.
pub fn init_with(default_level: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
