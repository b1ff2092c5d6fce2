//! Logging set-up: the `--log-format` and klog-compatible `--v` flags, and the `tracing`
//! subscriber they configure.
//!
//! Logs go to **stderr** in both formats, as klog does by default (`--logtostderr=true`), so
//! `kubectl logs` shows the same stream as upstream. `plain` is tracing's human format (ANSI
//! colours only when stderr is a terminal); `json` is one JSON object per line with the event's
//! fields flattened next to `timestamp`, `level`, `target` and `message`.
//!
//! The filter comes from `RUST_LOG` when it is set, non-empty and valid; otherwise from `--v`:
//!
//! | `--v` | filter |
//! |---|---|
//! | 0–4 (4 is upstream's forced default) | `info` |
//! | 5 | `info`, `debug` for the vpa-rs crates |
//! | 6 | as 5, plus `debug` for `kube` (one line per API request, like klog's v=6) |
//! | 7–8 | `info`, `trace` for the vpa-rs crates, `debug` for `kube` |
//! | ≥ 9 | `trace` |
//!
//! klog's other common flags (`--stderrthreshold`, `--logtostderr`, `--alsologtostderr`,
//! `--vmodule`) are accepted so that upstream manifests keep working, and ignored (a warning
//! names the ones given with a value other than their default).

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// The crates whose verbosity `--v` raises first.
const OWN_CRATES: [&str; 5] = [
    "vpa_core",
    "vpa_recommender",
    "vpa_updater",
    "vpa_admission",
    "vpa_e2e",
];

/// Logging flags shared by all binaries.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct LogArgs {
    /// Log format: plain or json. Logs go to stderr.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    /// klog verbosity: 0-4 info, 5-6 debug, 7-8 trace for vpa-rs, 9+ trace for everything.
    /// RUST_LOG, when set, takes precedence.
    #[arg(short = 'v', long = "v", default_value_t = 4, value_name = "LEVEL")]
    pub verbosity: u32,
    /// Accepted for klog compatibility; ignored (everything goes to stderr).
    #[arg(long = "stderrthreshold", value_name = "SEVERITY")]
    pub stderrthreshold: Option<String>,
    /// Accepted for klog compatibility; ignored (everything goes to stderr).
    #[arg(long = "logtostderr", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL", action = clap::ArgAction::Set)]
    pub logtostderr: Option<bool>,
    /// Accepted for klog compatibility; ignored.
    #[arg(long = "alsologtostderr", num_args = 0..=1, default_missing_value = "true",
          value_name = "BOOL", action = clap::ArgAction::Set)]
    pub alsologtostderr: Option<bool>,
    /// Accepted for klog compatibility; ignored (use RUST_LOG for per-module levels).
    #[arg(long = "vmodule", value_name = "PATTERN=N,...")]
    pub vmodule: Option<String>,
}

impl Default for LogArgs {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Plain,
            verbosity: 4,
            stderrthreshold: None,
            logtostderr: None,
            alsologtostderr: None,
            vmodule: None,
        }
    }
}

impl LogArgs {
    /// The `tracing` filter directive for `--v` (see the module docs).
    pub fn directive(&self) -> String {
        verbosity_directive(self.verbosity)
    }

    /// Installs the global subscriber for these flags (see [`init`]), then warns about the
    /// klog flags that were given but have no effect.
    pub fn init(&self) -> Result<(), TelemetryError> {
        init(self.log_format, &self.directive())?;
        for flag in self.ignored_flags() {
            tracing::warn!(flag, "klog flag accepted for compatibility and ignored");
        }
        Ok(())
    }

    /// The klog compatibility flags that were given with a value that would change klog's
    /// behaviour (`--stderrthreshold=info` and `--logtostderr=true` match ours and are not
    /// listed).
    pub fn ignored_flags(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self
            .stderrthreshold
            .as_deref()
            .is_some_and(|s| !matches!(s.to_ascii_lowercase().as_str(), "info" | "0"))
        {
            out.push("--stderrthreshold");
        }
        if self.logtostderr == Some(false) {
            out.push("--logtostderr");
        }
        if self.alsologtostderr.is_some() {
            out.push("--alsologtostderr");
        }
        if self.vmodule.as_deref().is_some_and(|s| !s.is_empty()) {
            out.push("--vmodule");
        }
        out
    }
}

/// The filter directive for a klog verbosity level.
pub fn verbosity_directive(v: u32) -> String {
    let own = |level: &str| {
        OWN_CRATES
            .iter()
            .map(|c| format!("{c}={level}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match v {
        0..=4 => "info".to_string(),
        5 => format!("info,{}", own("debug")),
        6 => format!("info,kube=debug,kube_client=debug,{}", own("debug")),
        7 | 8 => format!("info,kube=debug,kube_client=debug,{}", own("trace")),
        _ => "trace".to_string(),
    }
}

/// Errors from [`init`].
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The fallback directive does not parse.
    #[error("invalid log filter directive {directive:?}: {source}")]
    Directive {
        /// The directive.
        directive: String,
        /// Why it does not parse.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber is already installed.
    #[error("installing the log subscriber: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// The filter: `RUST_LOG` if set, non-empty and valid, else `default_directive`. The returned
/// string, if any, says why `RUST_LOG` was not used (for a warning once logging works).
fn filter(default_directive: &str) -> Result<(EnvFilter, Option<String>), TelemetryError> {
    // Parsed even when RUST_LOG wins, so a bad default is always reported.
    let fallback = EnvFilter::builder()
        .parse(default_directive)
        .map_err(|source| TelemetryError::Directive {
            directive: default_directive.to_string(),
            source,
        })?;
    match std::env::var(EnvFilter::DEFAULT_ENV) {
        Ok(env) if !env.trim().is_empty() => match EnvFilter::builder().parse(&env) {
            Ok(f) => Ok((f, None)),
            Err(e) => Ok((
                fallback,
                Some(format!(
                    "ignoring invalid RUST_LOG {env:?} ({e}); using {default_directive:?}"
                )),
            )),
        },
        _ => Ok((fallback, None)),
    }
}

/// Installs the global `tracing` subscriber: `format` on stderr, filtered by `RUST_LOG` when it
/// is set (and valid), else by `default_directive` (e.g. `"info"` or [`LogArgs::directive`]).
/// Fails if a global subscriber is already installed.
pub fn init(format: LogFormat, default_directive: &str) -> Result<(), TelemetryError> {
    let (filter, warning) = filter(default_directive)?;
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Plain => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .try_init()?,
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init()?,
    }
    if let Some(w) = warning {
        tracing::warn!("{w}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        log: LogArgs,
    }

    fn parse(args: &[&str]) -> Result<LogArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|c| c.log)
    }

    #[test]
    fn defaults_match_upstream() {
        let a = parse(&[]).unwrap();
        assert_eq!(a, LogArgs::default());
        assert_eq!(a.verbosity, 4);
        assert_eq!(a.log_format, LogFormat::Plain);
        assert_eq!(a.directive(), "info");
        assert!(a.ignored_flags().is_empty());
    }

    #[test]
    fn klog_spellings_of_v_are_accepted() {
        for args in [
            &["--v=5"][..],
            &["--v", "5"],
            &["-v=5"],
            &["-v", "5"],
            &["-v5"],
        ] {
            assert_eq!(parse(args).unwrap().verbosity, 5, "{args:?}");
        }
        assert!(parse(&["--v=-1"]).is_err());
        assert!(parse(&["--v=x"]).is_err());
    }

    #[test]
    fn upstream_manifest_flags_are_accepted() {
        let a = parse(&["--v=4", "--stderrthreshold=info", "--logtostderr"]).unwrap();
        assert_eq!(a.logtostderr, Some(true));
        assert!(a.ignored_flags().is_empty());
        let a = parse(&[
            "--stderrthreshold=ERROR",
            "--logtostderr=false",
            "--alsologtostderr",
            "--vmodule=foo=3",
        ])
        .unwrap();
        assert_eq!(
            a.ignored_flags(),
            [
                "--stderrthreshold",
                "--logtostderr",
                "--alsologtostderr",
                "--vmodule"
            ]
        );
    }

    #[test]
    fn log_format_values() {
        assert_eq!(
            parse(&["--log-format", "json"]).unwrap().log_format,
            LogFormat::Json
        );
        assert_eq!(
            parse(&["--log-format=plain"]).unwrap().log_format,
            LogFormat::Plain
        );
        assert!(parse(&["--log-format=xml"]).is_err());
    }

    #[test]
    fn verbosity_table() {
        assert_eq!(verbosity_directive(0), "info");
        assert_eq!(verbosity_directive(4), "info");
        let v5 = verbosity_directive(5);
        assert!(v5.starts_with("info,") && v5.contains("vpa_recommender=debug"));
        assert!(!v5.contains("kube="));
        let v6 = verbosity_directive(6);
        assert!(v6.contains("kube=debug") && v6.contains("vpa_updater=debug"));
        let v7 = verbosity_directive(7);
        assert!(v7.contains("vpa_admission=trace") && v7.contains("kube=debug"));
        assert_eq!(verbosity_directive(8), v7);
        assert_eq!(verbosity_directive(9), "trace");
        assert_eq!(verbosity_directive(u32::MAX), "trace");
        // Every directive we produce parses.
        for v in 0..12 {
            EnvFilter::builder()
                .parse(verbosity_directive(v))
                .unwrap_or_else(|e| panic!("v={v}: {e}"));
        }
    }

    #[test]
    fn bad_fallback_directive_is_an_error() {
        let err = filter("info,vpa_core=loud").unwrap_err();
        assert!(
            err.to_string().contains("invalid log filter directive"),
            "{err}"
        );
    }
}
