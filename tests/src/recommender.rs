//! `vpa-recommender` as a child process for the e2e tests (as it runs in a cluster), with its
//! admin port, log and signals, plus the Deployment and VPA manifests and VPA status helpers
//! the recommender tests share.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use serde_json::json;
use vpa_core::api::vpa::{VerticalPodAutoscaler, VerticalPodAutoscalerCondition};

/// A binary of the workspace next to the running test (`target/<profile>/<name>`).
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    // Tests run from target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe()?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .context("test binary has no target/<profile> directory")?;
    Ok(dir.join(name))
}

/// A free loopback port.
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A recommender child process; killed on drop.
pub struct RecommenderProcess {
    child: Child,
    admin: u16,
    log: PathBuf,
}

impl RecommenderProcess {
    /// Starts `vpa-recommender` with a free admin port, a 2 s interval and JSON logs to
    /// `dir/recommender-<tag>.log`, plus `args`. `kubeconfig` overrides `KUBECONFIG`.
    pub fn start(
        dir: &Path,
        tag: &str,
        kubeconfig: Option<&Path>,
        args: &[String],
    ) -> anyhow::Result<Self> {
        let bin = workspace_binary("vpa-recommender")?;
        ensure!(
            bin.is_file(),
            "{} not built (cargo build -p vpa-recommender)",
            bin.display()
        );
        let admin = free_port()?;
        let log = dir.join(format!("recommender-{tag}.log"));
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--address=127.0.0.1:{admin}"))
            .arg("--recommender-interval=2s")
            .arg("--log-format=json")
            .args(args);
        let child = crate::spawn_logged(cmd, &log, "info,vpa_recommender=debug", kubeconfig)?;
        Ok(Self { child, admin, log })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A plain HTTP/1.0 GET on the admin port: (status code, body).
    pub fn http_get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.admin))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
        let mut buf = String::new();
        s.read_to_string(&mut buf)?;
        let code = buf
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .context("no status line")?;
        let body = buf
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((code, body))
    }

    /// The value of the first `/metrics` line starting with `name_and_labels`.
    pub fn metric(&self, name_and_labels: &str) -> Option<f64> {
        let (_, body) = self.http_get("/metrics").ok()?;
        body.lines()
            .find(|l| l.starts_with(name_and_labels))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Its log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Whether it is alive, and its log (for error messages).
    pub fn describe(&mut self) -> String {
        let alive = self.alive();
        format!(
            "recommender (pid {}) alive: {alive}; its log:\n{}",
            self.pid(),
            self.logs()
        )
    }

    /// SIGKILL, and wait.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait up to 30 s for the exit status.
    pub fn sigterm(&mut self) -> anyhow::Result<ExitStatus> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        for _ in 0..300 {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("the recommender did not exit within 30 s of SIGTERM")
    }
}

impl Drop for RecommenderProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A Deployment of pause pods labelled `app=<name>`, one container `app` requesting 100m and
/// 100Mi.
pub fn deployment(name: &str, replicas: i32) -> anyhow::Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "app", "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}}}
    }))?)
}

/// A VPA in mode Off for an `apps/v1` target.
pub fn vpa(name: &str, target_kind: &str, target: &str) -> anyhow::Result<VerticalPodAutoscaler> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": target_kind, "name": target},
                 "updatePolicy": {"updateMode": "Off"}}
    }))?)
}

/// A condition of a VPA's status.
pub fn condition<'a>(
    v: &'a VerticalPodAutoscaler,
    kind: &str,
) -> Option<&'a VerticalPodAutoscalerCondition> {
    v.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// The first container's target (cpu, memory), when both are set.
pub fn target(v: &VerticalPodAutoscaler) -> Option<(String, String)> {
    let c = v
        .status
        .as_ref()?
        .recommendation
        .as_ref()?
        .container_recommendations
        .as_ref()?
        .first()?;
    Some((
        c.target.get("cpu")?.0.clone(),
        c.target.get("memory")?.0.clone(),
    ))
}

/// `RecommendationProvided=True` with a target for cpu and memory.
pub fn has_recommendation(v: &VerticalPodAutoscaler) -> bool {
    condition(v, "RecommendationProvided").is_some_and(|c| c.status == "True")
        && target(v).is_some()
}
