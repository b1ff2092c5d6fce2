//! A private local control plane for one test: [`OwnControlPlane`] runs `controlplane all` (the
//! tool `scripts/build-tools` builds) in its own temp dir and process group, like `scripts/cluster
//! up` does, and can stop and restart it *in place*: `controlplane all` started again with the
//! same dir reuses that run's ports, certificates and etcd data, so the API server comes back on
//! the same URL with the same CA, client certificate and objects. Tests that take the API server
//! away (outages, restarts) use this instead of the shared control plane in `KUBECONFIG`.
//!
//! Start-up takes about 4 to 9 s (CRDs included), a restart about 2 to 5 s.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::{install_crypto, repo_root, tool, unique_name};

/// One fake node, as roomy as the shared control plane's big ones.
pub const DEFAULT_NODES: &str = "vpa-own-node-1:8:32Gi:110";

/// How long `controlplane wait` may take after a start or restart.
const READY_TIMEOUT: &str = "60s";
/// How long a SIGTERM may take before the process group is killed.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// A control plane of this test alone (etcd, kube-apiserver, controller-manager, scheduler,
/// kubelet stand-in) with the VPA CRDs installed. Dropping it kills its process group and removes
/// its directory.
pub struct OwnControlPlane {
    bin: PathBuf,
    dir: PathBuf,
    nodes: String,
    child: Option<Child>,
    starts: u32,
}

impl OwnControlPlane {
    /// Starts one with [`DEFAULT_NODES`] and waits until it is ready and the CRDs are Established.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_nodes(DEFAULT_NODES).await
    }

    /// Like [`Self::start`], with fake nodes `name:cpu:memory:pods,...`.
    pub async fn start_with_nodes(nodes: &str) -> anyhow::Result<Self> {
        install_crypto();
        let bin = tool("controlplane")?;
        let dir = std::env::temp_dir().join(unique_name("vpa-e2e-own-cp"));
        std::fs::create_dir_all(dir.join("logs"))
            .with_context(|| format!("creating {}", dir.display()))?;
        let mut cp = Self {
            bin,
            dir,
            nodes: nodes.to_owned(),
            child: None,
            starts: 0,
        };
        cp.launch().await?;
        cp.install_crds().await?;
        Ok(cp)
    }

    /// The state directory (`pki/`, `etcd/`, `logs/`, `kubeconfig`, `ports`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig (embedded CA and client certificate; the same across restarts).
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// A kube `Config` from [`Self::kubeconfig_path`] (kube's default retry layer on).
    pub async fn config(&self) -> anyhow::Result<Config> {
        install_crypto();
        let path = self.kubeconfig_path();
        let kubeconfig =
            Kubeconfig::read_from(&path).with_context(|| format!("reading {}", path.display()))?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("loading {}", path.display()))
    }

    /// A client for this control plane.
    pub async fn client(&self) -> anyhow::Result<Client> {
        Client::try_from(self.config().await?).context("building the kube client")
    }

    /// The PID of the running `controlplane all` (also its process group), if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// How many times `controlplane all` was started (1 after [`Self::start`]).
    pub fn starts(&self) -> u32 {
        self.starts
    }

    /// Whether `controlplane all` runs (it has not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last `lines` lines of `logs/controlplane.log` (all runs, appended).
    pub fn log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.dir.join("logs/controlplane.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Stops it as an operator would: SIGTERM to the process group, then SIGKILL if it is not
    /// gone within 15 s. Returns once no process of the group is left. No-op when stopped.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.terminate("TERM", STOP_GRACE).await
    }

    /// Kills it at once (SIGKILL to the process group), as a crash would. No-op when stopped.
    pub async fn kill(&mut self) -> anyhow::Result<()> {
        self.terminate("KILL", Duration::ZERO).await
    }

    /// Starts it again in the same directory (same URL, CA and data; see the module doc) after a
    /// [`Self::stop`] or [`Self::kill`] (stopping it first if it still runs) and waits until ready.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        self.launch().await
    }

    async fn terminate(&mut self, signal: &str, grace: Duration) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        let pgid = child.id();
        signal_group(pgid, signal);
        let start = Instant::now();
        let mut killed = signal == "KILL";
        loop {
            let exited = child.try_wait()?.is_some();
            if exited && !group_alive(pgid) {
                return Ok(());
            }
            if !killed && start.elapsed() >= grace {
                signal_group(pgid, "KILL");
                killed = true;
            }
            if start.elapsed() >= grace + Duration::from_secs(10) {
                bail!(
                    "process group {pgid} of {} still alive {:?} after SIG{signal}",
                    self.bin.display(),
                    start.elapsed()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Spawns `controlplane all --dir DIR` in its own process group and waits until
    /// `controlplane wait` says it is ready (failing early if it exits meanwhile).
    async fn launch(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.join("logs/controlplane.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let child = Command::new(&self.bin)
            .arg("all")
            .arg("--dir")
            .arg(&self.dir)
            .arg("--nodes")
            .arg(&self.nodes)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {} all", self.bin.display()))?;
        self.child = Some(child);
        self.starts += 1;
        let n_nodes = self.nodes.split(',').filter(|s| !s.is_empty()).count();
        let mut wait = Command::new(&self.bin);
        wait.arg("wait")
            .arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .arg("--timeout")
            .arg(READY_TIMEOUT)
            .arg("--nodes")
            .arg(n_nodes.to_string());
        self.run_while_alive("controlplane wait", wait).await
    }

    /// Applies `charts/vpa/crds/*.yaml` (server-side) and waits until every CRD is Established.
    async fn install_crds(&mut self) -> anyhow::Result<()> {
        let crd_dir = repo_root().join("charts/vpa/crds");
        let mut files: Vec<PathBuf> = std::fs::read_dir(&crd_dir)
            .with_context(|| format!("reading {}", crd_dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
            .collect();
        files.sort();
        if files.is_empty() {
            bail!("no CRDs in {}", crd_dir.display());
        }
        let mut apply = Command::new(&self.bin);
        apply
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .args(["apply", "--server-side", "--force-conflicts"]);
        for f in &files {
            apply.arg("-f").arg(f);
        }
        self.run_while_alive("kubectl apply of the CRDs", apply)
            .await?;
        let mut established = Command::new(&self.bin);
        established
            .arg("kubectl")
            .arg("--kubeconfig")
            .arg(self.kubeconfig_path())
            .args([
                "wait",
                "--for",
                "condition=Established",
                "--timeout=30s",
                "crd",
                "--all",
            ]);
        self.run_while_alive("CRDs Established", established).await
    }

    /// Runs a helper command to completion (on a blocking thread, so the test's runtime keeps
    /// serving), failing early if `controlplane all` exits meanwhile.
    async fn run_while_alive(&mut self, what: &str, mut cmd: Command) -> anyhow::Result<()> {
        cmd.stdin(Stdio::null());
        let mut task = tokio::task::spawn_blocking(move || cmd.output());
        loop {
            tokio::select! {
                out = &mut task => {
                    let out = out.context("joining the helper thread")?
                        .with_context(|| format!("running {what}"))?;
                    if out.status.success() {
                        return Ok(());
                    }
                    bail!(
                        "{what} failed ({}): {}{}\nlast lines of controlplane.log:\n{}",
                        out.status,
                        String::from_utf8_lossy(&out.stdout),
                        String::from_utf8_lossy(&out.stderr),
                        self.log_tail(30)
                    );
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Some(c) = self.child.as_mut()
                        && let Some(status) = c.try_wait()?
                    {
                        self.child = None;
                        bail!(
                            "controlplane all exited ({status}) during {what}; last lines of its log:\n{}",
                            self.log_tail(30)
                        );
                    }
                }
            }
        }
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pgid = child.id();
            signal_group(pgid, "KILL");
            let _ = child.wait();
            let start = Instant::now();
            while group_alive(pgid) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            eprintln!("warning: removing {}: {e}", self.dir.display());
        }
    }
}

/// Sends SIG`signal` to every process of group `pgid` (errors, e.g. none left, are ignored).
fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether a process of group `pgid` is still alive (zombies, which hold no ports, don't count).
fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            return false;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // pid (comm) state ppid pgrp ...; comm may contain spaces and parentheses.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        let pgrp = fields.nth(1).and_then(|s| s.parse::<u32>().ok());
        pgrp == Some(pgid) && state != Some("Z") && state != Some("X")
    })
}
