//! JSON logs on stdout at the level Lambda's `LoggingConfig` sets (`AWS_LAMBDA_LOG_LEVEL`), or
//! `RUST_LOG` when given; each line carries the invocation's span (its request id), so one
//! conversion's steps can be followed across functions by the `conversion_id` field.
//!
//! The filter is a [`Targets`] list (`info`, `lector_aws=debug,warn`): the `target=level` part
//! of `RUST_LOG`'s syntax, without `EnvFilter`'s span and field matching, whose regular
//! expressions would be a third of a megabyte in every function's package.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The filter: `RUST_LOG` first (when it parses), else Lambda's application log level, else
/// `info`.
pub fn filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> Targets {
    if let Some(directives) = rust_log.filter(|d| !d.trim().is_empty())
        && let Ok(filter) = directives.trim().parse::<Targets>()
    {
        return filter;
    }
    let level = match lambda_level.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE") => LevelFilter::TRACE,
        Some("DEBUG") => LevelFilter::DEBUG,
        Some("WARN") => LevelFilter::WARN,
        // Lambda's FATAL has no tracing level of its own.
        Some("ERROR" | "FATAL") => LevelFilter::ERROR,
        _ => LevelFilter::INFO,
    };
    Targets::new().with_default(level)
}

/// Install the JSON subscriber once; later calls do nothing (tests install their own).
pub fn init() {
    let filter = filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(LevelFilter::TRACE)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        // Lambda stamps every line with its own time.
        .without_time()
        .finish()
        .with(filter)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_levels_map_onto_tracing_levels() {
        assert_eq!(filter(None, Some("DEBUG")).to_string(), "debug");
        assert_eq!(filter(None, Some("fatal")).to_string(), "error");
        assert_eq!(filter(None, None).to_string(), "info");
        assert_eq!(filter(Some("lector=trace"), Some("ERROR")).to_string(), "lector=trace");
        assert_eq!(filter(Some(" "), Some("WARN")).to_string(), "warn");
        // What does not parse as a list of `target=level` is not half taken.
        assert_eq!(filter(Some("lector=loud"), Some("ERROR")).to_string(), "error");
    }
}
