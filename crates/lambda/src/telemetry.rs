//! JSON logs on stdout at the level Lambda's `LoggingConfig` sets (`AWS_LAMBDA_LOG_LEVEL`), or
//! `RUST_LOG` when given; each line carries the invocation's span (its request id), so one
//! conversion's steps can be followed across functions by the `conversion_id` field.

use tracing_subscriber::EnvFilter;

/// The filter: `RUST_LOG` first, else Lambda's application log level, else `info`.
pub fn filter(rust_log: Option<&str>, lambda_level: Option<&str>) -> EnvFilter {
    if let Some(directives) = rust_log.filter(|d| !d.trim().is_empty())
        && let Ok(filter) = EnvFilter::try_new(directives)
    {
        return filter;
    }
    let level = match lambda_level.map(|l| l.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        // Lambda's FATAL has no tracing level of its own.
        Some("ERROR" | "FATAL") => "error",
        _ => "info",
    };
    EnvFilter::new(level)
}

/// Install the JSON subscriber once; later calls do nothing (tests install their own).
pub fn init() {
    let filter = filter(
        std::env::var("RUST_LOG").ok().as_deref(),
        std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref(),
    );
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(true)
        // Lambda stamps every line with its own time.
        .without_time()
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
    }
}
