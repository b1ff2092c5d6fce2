//! `vpa-updater` binary entry point.

use clap::Parser as _;
use vpa_updater::config::Config;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    match vpa_updater::run::main(config) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
