//! `crdgen`: writes the CRDs of vpa-rs (from `vpa_core::api::crds`) into the Helm chart.
//!
//! ```text
//! cargo run -p vpa-core --bin crdgen              # write charts/vpa/crds/*.yaml
//! cargo run -p vpa-core --bin crdgen -- --check   # fail if a committed file is out of date
//! cargo run -p vpa-core --bin crdgen -- --out DIR # write (or check) DIR instead
//! ```
//!
//! Exit status: 0 when the files were written or are up to date, 1 when `--check` found a stale
//! or missing file, 2 on a usage or I/O error.

use std::error::Error as _;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The chart's CRD directory, relative to this crate.
const DEFAULT_OUT_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/vpa/crds");

const USAGE: &str = "usage: crdgen [--check] [--out DIR]";

#[derive(Debug, thiserror::Error)]
enum CrdgenError {
    #[error("{0}\n{USAGE}")]
    Usage(String),
    #[error(transparent)]
    Render(#[from] vpa_core::api::Error),
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

struct Args {
    check: bool,
    out_dir: PathBuf,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, CrdgenError> {
    let mut parsed = Args {
        check: false,
        out_dir: PathBuf::from(DEFAULT_OUT_DIR),
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => parsed.check = true,
            "--out" => {
                let dir = args
                    .next()
                    .ok_or_else(|| CrdgenError::Usage("--out needs a directory".into()))?;
                parsed.out_dir = PathBuf::from(dir);
            }
            "-h" | "--help" => return Ok(None),
            other => match other.strip_prefix("--out=") {
                Some(dir) => parsed.out_dir = PathBuf::from(dir),
                None => return Err(CrdgenError::Usage(format!("unknown argument `{other}`"))),
            },
        }
    }
    Ok(Some(parsed))
}

/// Writes the files, or with `check` lists those that are missing or differ from the generated
/// ones, each with what is wrong.
fn run(args: &Args) -> Result<Vec<(PathBuf, &'static str)>, CrdgenError> {
    let mut stale = Vec::new();
    for (file, contents) in vpa_core::api::crd_files()? {
        let path = args.out_dir.join(file);
        if args.check {
            match std::fs::read_to_string(&path) {
                Ok(committed) if committed == contents => {}
                Ok(_) => stale.push((path, "is out of date")),
                Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
                    stale.push((path, "is missing"));
                }
                Err(source) => return Err(CrdgenError::Read { path, source }),
            }
        } else {
            write(&path, &contents)?;
            println!("wrote {}", path.display());
        }
    }
    Ok(stale)
}

fn write(path: &Path, contents: &str) -> Result<(), CrdgenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| CrdgenError::Write {
            path: path.to_owned(),
            source,
        })?;
    }
    std::fs::write(path, contents).map_err(|source| CrdgenError::Write {
        path: path.to_owned(),
        source,
    })
}

/// The error and its causes on one line each.
fn report(error: &CrdgenError) -> String {
    let mut text = format!("crdgen: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        let _ = write!(text, "\n  caused by: {cause}");
        source = cause.source();
    }
    text
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("{}", report(&error));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(stale) if stale.is_empty() => ExitCode::SUCCESS,
        Ok(stale) => {
            for (path, problem) in &stale {
                eprintln!("crdgen: {} {problem}", path.display());
            }
            let out = if args.out_dir == Path::new(DEFAULT_OUT_DIR) {
                String::new()
            } else {
                format!(" -- --out {}", args.out_dir.display())
            };
            eprintln!("crdgen: run `cargo run -p vpa-core --bin crdgen{out}` to regenerate");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("{}", report(&error));
            ExitCode::from(2)
        }
    }
}
