//! `vpa-admission` binary entry point.

use clap::Parser as _;
use vpa_admission::config::Config;
use vpa_admission::hooks::Hooks;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    match vpa_admission::run::main(config, |_ctx| Ok(Hooks::default())) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
