//! The `vpa-admission` webhook as a child process for the e2e tests: it runs on 127.0.0.1,
//! registers its MutatingWebhookConfiguration by URL (one per test, scoped to the test's
//! namespace) and renews its status Lease in that namespace, so the real API server calls it
//! and an updater pointed at the namespace sees it alive.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::ensure;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use kube::Client;
use kube::api::{Api, DeleteParams};

use crate::recommender::{free_port, workspace_binary};
use crate::{unique_name, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// A `vpa-admission` child process; killed on drop, with its webhook configuration deleted.
pub struct Webhook {
    child: Option<Child>,
    /// The HTTPS webhook port.
    pub port: u16,
    /// The admin port (`/readyz`, `/metrics`).
    pub admin: u16,
    log: PathBuf,
    /// The MutatingWebhookConfiguration's name.
    pub config_name: String,
    client: Client,
}

impl Webhook {
    /// Starts `vpa-admission` for namespace `ns` (its VPAs, its status Lease), logging to a
    /// file in `dir`; `extra` flags are appended.
    pub fn start(client: &Client, dir: &Path, ns: &str, extra: &[String]) -> anyhow::Result<Self> {
        Self::start_as(client, dir, ns, None, extra)
    }

    /// As [`Webhook::start`], authenticating with `kubeconfig` instead of `KUBECONFIG`.
    pub fn start_as(
        client: &Client,
        dir: &Path,
        ns: &str,
        kubeconfig: Option<&Path>,
        extra: &[String],
    ) -> anyhow::Result<Self> {
        let bin = workspace_binary("vpa-admission")?;
        ensure!(bin.is_file(), "{} not built", bin.display());
        let (port, admin) = (free_port()?, free_port()?);
        let config_name = unique_name("vpa-e2e-webhook");
        let log = dir.join(format!("{config_name}.log"));
        let missing = dir.join("no-such-file.pem");
        let mut cmd = Command::new(&bin);
        cmd.arg(format!("--port={port}"))
            .arg(format!("--address=127.0.0.1:{admin}"))
            .arg("--register-by-url")
            .arg("--webhook-address=https://127.0.0.1")
            .arg(format!("--webhook-port={port}"))
            .arg(format!("--webhook-config-name={config_name}"))
            .arg(format!("--vpa-object-namespace={ns}"))
            .arg(format!("--namespace={ns}"))
            .arg("--log-format=json");
        // Generated certificates unless the test gives files.
        if !extra.iter().any(|a| a.starts_with("--tls-cert-file")) {
            cmd.arg(format!("--tls-cert-file={}", missing.display()))
                .arg(format!("--tls-private-key={}", missing.display()))
                .arg(format!("--client-ca-file={}", missing.display()));
        }
        cmd.args(extra);
        let child = crate::spawn_logged(
            cmd,
            &log,
            "info,vpa_admission=debug,vpa_core=debug",
            kubeconfig,
        )?;
        Ok(Self {
            child: Some(child),
            port,
            admin,
            log,
            config_name,
            client: client.clone(),
        })
    }

    /// The process's log so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/readyz` answers 200.
    pub fn ready(&self) -> bool {
        http_status(self.admin, "/readyz") == Some(200)
    }

    /// Stops the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits until ready (60 s), with the log in the error.
    pub async fn wait_ready(&self) -> anyhow::Result<()> {
        let r = wait_for("the webhook to be ready", WAIT, async || {
            Ok(self.ready().then_some(()))
        })
        .await;
        r.map_err(|e| anyhow::anyhow!("{e}\n--- webhook log ---\n{}", self.logs()))
    }

    /// Stops the process and deletes its webhook configuration.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.kill();
        let api: Api<MutatingWebhookConfiguration> = Api::all(self.client.clone());
        match api
            .delete(&self.config_name, &DeleteParams::default())
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if crate::api_code(&e) == Some(404) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The HTTP status of `GET path` on 127.0.0.1:`port`, `None` when nothing answers.
pub fn http_status(port: u16, path: &str) -> Option<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split(' ').nth(1)?.parse().ok()
}
