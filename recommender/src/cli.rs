//! The `vpa-recommender` command line: subcommands and the `replay` driver.

use crate::config::EngineFlags;
use crate::history::{self, PrometheusFlags, PrometheusHistoryProvider};
use crate::replay::{ReplaySettings, replay_reader};
use crate::{EXAMPLE_TRACE, output, plot};
use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{BufReader, Write};
use std::path::PathBuf;
use vpa_core::time::{Duration, Timestamp, parse_go_duration};

/// Kubernetes Vertical Pod Autoscaler recommender (vpa-rs).
///
/// Without a subcommand it runs in the cluster: it watches VerticalPodAutoscalers and pods,
/// reads usage from the Metrics API and writes recommendations and checkpoints. The flags
/// keep the upstream recommender's names and defaults.
#[derive(Debug, Parser)]
#[command(
    name = "vpa-recommender",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do; none: run the recommender.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of the in-cluster recommender.
    #[command(flatten)]
    pub run: crate::run::RunArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Replay a usage trace through the recommendation engine and print what a VPA would
    /// recommend. Without --trace, replays the example trace built into the binary.
    Replay(ReplayArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputKind {
    /// A table per workload and container, as of the end of the trace.
    Table,
    /// JSON: every emitted recommendation with the time it was computed.
    Json,
}

fn go_duration(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s).map_err(|e| e.to_string())?;
    if d.as_nanos() <= 0 {
        return Err("must be positive".into());
    }
    Ok(d)
}

/// `vpa-recommender replay` arguments.
#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// CSV trace: timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event.
    /// Defaults to the built-in example trace.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputKind,
    /// Also emit recommendations at every multiple of this duration (Go syntax, e.g. 1h).
    #[arg(long, value_name = "DURATION", value_parser = go_duration)]
    pub every: Option<Duration>,
    /// Draw usage with target, lower and upper bound lines to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Replay the history in this Prometheus (e.g. http://localhost:9090) instead of a trace,
    /// queried as the recommender's --storage=prometheus does.
    #[arg(long, value_name = "URL", conflicts_with = "trace")]
    pub prometheus: Option<String>,
    /// With --prometheus: the end of the history to load (RFC 3339); default: now.
    #[arg(long, value_name = "TIME", requires = "prometheus", value_parser = rfc3339)]
    pub now: Option<Timestamp>,
    /// With --prometheus: only this namespace.
    #[arg(
        long,
        value_name = "NAMESPACE",
        default_value = "",
        requires = "prometheus"
    )]
    pub namespace: String,
    /// With --prometheus: also write the loaded history as a CSV trace, for replays without
    /// Prometheus.
    #[arg(long, value_name = "FILE.csv", requires = "prometheus")]
    pub save_trace: Option<PathBuf>,
    /// Prometheus history flags (upstream's names and defaults); --prometheus sets the address.
    #[command(flatten)]
    pub history: PrometheusFlags,
    /// Engine flags, with the upstream recommender's names and defaults.
    #[command(flatten)]
    pub engine: EngineFlags,
}

fn rfc3339(s: &str) -> Result<Timestamp, String> {
    let t = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| format!("{s:?}: {e}"))?;
    t.timestamp_nanos_opt()
        .map(Timestamp::from_unix_nanos)
        .ok_or_else(|| format!("{s:?}: out of range"))
}

/// Loads the history from Prometheus as a trace (CSV).
fn prometheus_trace(args: &ReplayArgs, url: &str) -> Result<String> {
    let mut flags = args.history.clone();
    flags.prometheus_address = url.to_string();
    let now = args.now.unwrap_or_else(crate::run::now);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (provider, history) = runtime.block_on(async {
        let provider = PrometheusHistoryProvider::new(&flags, &args.namespace)?;
        let history = provider.load(now).await?;
        Ok::<_, history::HistoryError>((provider, history))
    })?;
    let samples: usize = history
        .values()
        .flat_map(|p| p.containers.values())
        .map(Vec::len)
        .sum();
    if samples == 0 {
        bail!(
            "Prometheus at {url} returned no usage for {} and {} between {} and {}",
            provider.queries().cpu_query(),
            provider.queries().memory_query(),
            now.sub(provider.queries().length).to_rfc3339(),
            now.to_rfc3339()
        );
    }
    let csv = history::to_trace_csv(&history);
    if let Some(path) = &args.save_trace {
        std::fs::write(path, &csv)
            .with_context(|| format!("cannot write trace {}", path.display()))?;
    }
    Ok(csv)
}

/// Runs an offline subcommand, writing results to `stdout` (`None` is the in-cluster
/// recommender, see [`crate::run::run`]).
pub fn run(command: Command, stdout: &mut dyn Write) -> Result<()> {
    match command {
        Command::Replay(args) => replay(args, stdout),
    }
}

fn replay(args: ReplayArgs, stdout: &mut dyn Write) -> Result<()> {
    let recommender = args
        .engine
        .recommender()
        .map_err(anyhow::Error::msg)
        .context("invalid recommender flags")?;
    // Plots need recommendation lines over time even when only the end is printed.
    let plot_every = Duration::from_hours(1);
    let settings = ReplaySettings {
        aggregations: args.engine.aggregations(),
        recommender,
        format: args.engine.output_format(),
        global_max_allowed: args.engine.global_max_allowed(),
        every: args.every.or(args.plot.as_ref().map(|_| plot_every)),
        series_resolution: args.plot.as_ref().map(|_| Duration::from_minutes(15)),
    };
    let mut out = match (&args.trace, &args.prometheus) {
        (_, Some(url)) => {
            let csv = prometheus_trace(&args, url)?;
            replay_reader(csv.as_bytes(), settings)
                .with_context(|| format!("history from Prometheus at {url}"))?
        }
        (Some(path), None) => {
            let file = std::fs::File::open(path)
                .with_context(|| format!("cannot open trace {}", path.display()))?;
            replay_reader(BufReader::with_capacity(1 << 20, file), settings)
                .with_context(|| format!("trace {}", path.display()))?
        }
        (None, None) => {
            replay_reader(EXAMPLE_TRACE.as_bytes(), settings).context("built-in example trace")?
        }
    };
    if out.recommendations.is_empty() {
        bail!("the trace has no rows");
    }
    if let Some(path) = &args.plot {
        let n = plot::write_svg(&out, path)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot write plot {}", path.display()))?;
        if n < out.series.len() {
            eprintln!(
                "plotted the first {n} of {} containers in {}",
                out.series.len(),
                path.display()
            );
        }
    }
    if args.every.is_none() {
        // Only the end of the trace was asked for.
        if let Some(end) = out.recommendations.iter().map(|e| e.time).max() {
            out.recommendations.retain(|e| e.time == end);
        }
    }
    match args.output {
        OutputKind::Table => stdout.write_all(output::to_table(&out).as_bytes())?,
        OutputKind::Json => {
            serde_json::to_writer_pretty(&mut *stdout, &output::to_json(&out))?;
            stdout.write_all(b"\n")?;
        }
    }
    Ok(())
}
