//! `vpa-admission`: HTTPS mutating webhook that sets pod requests and limits from VPA recommendations and validates VPA objects.
//!
//! This binary is scaffolding in this release: it only reports that the component is not
//! available yet, so that a deployment that runs it fails loudly instead of doing nothing.

use clap::Parser;

/// vpa-rs admission.
#[derive(Debug, Parser)]
#[command(name = "vpa-admission", version, about)]
struct Cli {}

fn main() -> std::process::ExitCode {
    let _cli = Cli::parse();
    eprintln!(
        "vpa-admission: this component is not available in this release yet; only vpa-recommender replay is"
    );
    std::process::ExitCode::from(2)
}
