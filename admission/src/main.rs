//! `vpa-admission` binary entry point.

/// mimalloc: fewer and cheaper allocations on the request path than glibc malloc (see
/// docs/benchmarks.md, Admission controller).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser as _;
use vpa_admission::config::Config;

fn main() -> std::process::ExitCode {
    let config = Config::parse();
    match vpa_admission::run::main(config, vpa_admission::run::vpa_hooks) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
