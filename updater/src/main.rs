//! `vpa-updater`: evicts or resizes in place the pods whose requests are far from their VPA recommendation.
//!
//! This binary is scaffolding in this release: it only reports that the component is not
//! available yet, so that a deployment that runs it fails loudly instead of doing nothing.

use clap::Parser;

/// vpa-rs updater.
#[derive(Debug, Parser)]
#[command(name = "vpa-updater", version, about)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "vpa-updater: this component is not available in this release yet; only vpa-recommender replay is"
    );
    std::process::ExitCode::from(2)
}
