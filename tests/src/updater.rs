//! The `vpa-updater` child process of the e2e tests.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::ensure;
use serde_json::Value;

use crate::admission::http_status;
use crate::recommender::{free_port, workspace_binary};
use crate::wait_for;

const WAIT: Duration = Duration::from_secs(60);

/// A `vpa-updater` child process scoped to one namespace; killed on drop.
pub struct Updater {
    child: Option<Child>,
    admin: u16,
    log: std::path::PathBuf,
}

impl Updater {
    /// Starts the updater for `ns` (the admission status Lease read from `ns` too) with a 2 s
    /// interval unless `extra` sets one.
    pub fn start(dir: &Path, ns: &str, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(dir, ns, None, ns, extra)
    }

    /// As [`Updater::start`], with `kubeconfig` instead of `KUBECONFIG` and the status Lease
    /// read from `lease_namespace`.
    pub fn start_with(
        dir: &Path,
        ns: &str,
        kubeconfig: Option<&Path>,
        lease_namespace: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let bin = workspace_binary("vpa-updater")?;
        ensure!(bin.is_file(), "{} not built", bin.display());
        let admin = free_port()?;
        let log = dir.join(format!("updater-{ns}.log"));
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--address=127.0.0.1:{admin}"))
            .arg(format!("--vpa-object-namespace={ns}"))
            .arg(format!(
                "--admission-controller-status-lease-namespace={lease_namespace}"
            ))
            .arg("--log-format=json");
        if !extra.iter().any(|a| a.starts_with("--updater-interval")) {
            cmd.arg("--updater-interval=2s");
        }
        cmd.args(extra);
        let child = crate::spawn_logged(cmd, &log, "info,vpa_updater=debug", kubeconfig)?;
        Ok(Self {
            child: Some(child),
            admin,
            log,
        })
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.admin)) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// The value of a sample (`name{labels}` exactly as exposed); 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| {
                l.strip_prefix(sample)
                    .and_then(|rest| rest.strip_prefix(' '))
                    .and_then(|v| v.trim().parse().ok())
            })
            .unwrap_or(0.0)
    }

    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        wait_for("the updater to be ready", WAIT, async || {
            Ok((http_status(self.admin, "/readyz") == Some(200)).then_some(()))
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}\n--- updater log ---\n{}", self.logs()))
    }

    /// Waits until `f` holds on the metrics, with the log in the error.
    pub async fn wait_metric(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&Updater) -> bool,
    ) -> anyhow::Result<()> {
        wait_for(what, timeout, async || Ok(f(self).then_some(())))
            .await
            .map_err(|e| anyhow::anyhow!("{e}\n--- updater log ---\n{}", self.logs()))
    }

    /// The `loop done` records of the log, as JSON.
    pub fn loops(&self) -> Vec<Value> {
        self.logs()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("message").and_then(Value::as_str) == Some("loop done"))
            .collect()
    }
}

impl Drop for Updater {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
