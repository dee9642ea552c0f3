//! Logs: structured, to stderr, text or JSON, filtered by `log_level`.

use tracing_subscriber::EnvFilter;

pub fn init(level: &str, format: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let res = if format == "json" {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
    if let Err(e) = res {
        eprintln!("logging already initialised: {e}");
    }
}
