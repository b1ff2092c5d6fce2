//! `vpa-recommender` binary entry point.

use clap::Parser;
use std::io::Write;
use vpa_recommender::cli::{Cli, run};

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(command) => {
            let stdout = std::io::stdout();
            let mut lock = std::io::BufWriter::new(stdout.lock());
            run(command, &mut lock).and_then(|()| lock.flush().map_err(Into::into))
        }
        None => vpa_recommender::run::main(cli.run),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
