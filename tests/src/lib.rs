//! End-to-end test helpers for vpa-rs.
//!
//! The e2e tests run against the local control plane (real kube-apiserver, controller-manager,
//! scheduler and a kubelet stand-in, see `docs/controlplane.md`) that `scripts/test` starts and
//! exports through `KUBECONFIG`. Each test gets its own namespace ([`TestNamespace`]), so tests
//! can run in parallel.
//!
//! Without `KUBECONFIG` the tests fail and say how to run them, unless `VPA_TEST_NO_CLUSTER=1`
//! is set, in which case they print that they are skipped (only for quick local loops; CI always
//! uses the cluster).

pub mod admission;
pub mod controlplane;
pub mod metrics_server;
pub mod recommender;
pub mod updater;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use serde::Deserialize as _;

/// Label put on every namespace the tests create.
pub const E2E_LABEL: &str = "vpa-rs.test/e2e";
/// Label the kubelet stand-in puts on its fake nodes.
pub const FAKE_NODE_LABEL: &str = "vpa-rs.test/fake-node";
/// Kubernetes version the control plane is built from.
pub const K8S_VERSION: &str = "1.37.2";

/// Message for a test run without a control plane.
pub const HOW_TO_RUN: &str = "KUBECONFIG is not set: the e2e tests need the local control plane. \
Run them with `scripts/test` (builds the Go tools, starts the control plane, runs `cargo test \
--workspace`, tears it down), or start one by hand with `eval \"$(scripts/cluster up)\"`. For a \
quick local loop without the control plane set VPA_TEST_NO_CLUSTER=1 (the e2e tests are then \
skipped).";

/// Installs the ring rustls provider (kube is built with the `ring` feature). Idempotent.
pub fn install_crypto() {
    // Err means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The repository root (the workspace directory).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// `tests/data` of this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// A tool built by `scripts/build-tools` (`tools/bin/<name>`), or `$VPA_E2E_<NAME>` if set.
pub fn tool(name: &str) -> anyhow::Result<PathBuf> {
    let var = format!("VPA_E2E_{}", name.to_uppercase().replace('-', "_"));
    let path = match std::env::var_os(&var) {
        Some(p) => PathBuf::from(p),
        None => repo_root().join("tools").join("bin").join(name),
    };
    if !path.is_file() {
        bail!(
            "{} not found; build it with `scripts/build-tools` (or run the suite with `scripts/test`)",
            path.display()
        );
    }
    Ok(path)
}

/// True when the quick local mode without a control plane was asked for.
pub fn no_cluster_mode() -> bool {
    std::env::var("VPA_TEST_NO_CLUSTER").is_ok_and(|v| v == "1")
}

/// Returns a client for the control plane in `KUBECONFIG`; `Ok(None)` (after printing that the
/// test is skipped) when `VPA_TEST_NO_CLUSTER=1` and there is no `KUBECONFIG`; otherwise an
/// error that tells how to run the e2e tests.
pub async fn cluster(test: &str) -> anyhow::Result<Option<Client>> {
    install_crypto();
    if std::env::var_os("KUBECONFIG").is_none_or(|v| v.is_empty()) {
        if no_cluster_mode() {
            eprintln!("SKIPPED {test}: VPA_TEST_NO_CLUSTER=1 and no KUBECONFIG");
            return Ok(None);
        }
        bail!("{test}: {HOW_TO_RUN}");
    }
    Ok(Some(client().await?))
}

/// A client from `KUBECONFIG` (or the usual inference), with kube's default retry layer.
pub async fn client() -> anyhow::Result<Client> {
    client_with_retry(true).await
}

/// A client whose requests are not retried. kube's default client retries 429, 503 and 504 up
/// to 15 times with exponential backoff (`RetryPolicy::server_retry`), so an eviction refused by
/// a PodDisruptionBudget (429) only surfaces after minutes. Use this one to see the 429 at once.
pub async fn client_without_retry() -> anyhow::Result<Client> {
    client_with_retry(false).await
}

async fn client_with_retry(retry: bool) -> anyhow::Result<Client> {
    install_crypto();
    let mut config = Config::infer()
        .await
        .context("loading the kubeconfig (KUBECONFIG)")?;
    config.default_retry = retry;
    Client::try_from(config).context("building the kube client")
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A DNS-1123 name `<prefix>-<unique suffix>`, unique across parallel tests and processes.
pub fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mixed = (nanos as u64)
        ^ (u64::from(std::process::id()) << 40)
        ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let mut prefix: String = prefix
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    prefix.truncate(40);
    format!(
        "{}-{:010x}",
        prefix.trim_matches('-'),
        mixed & 0xff_ffff_ffff
    )
}

/// A namespace that exists for one test. Dropping it deletes the namespace (the namespace
/// controller then removes its content). `VPA_E2E_KEEP_NAMESPACES=1` keeps them for debugging.
pub struct TestNamespace {
    name: String,
    deleted: bool,
}

impl TestNamespace {
    /// Creates a fresh namespace `e2e-<prefix>-<suffix>` and waits for its `default`
    /// ServiceAccount (created by controller-manager; the ServiceAccount admission plugin
    /// rejects pods without it).
    pub async fn create(client: &Client, prefix: &str) -> anyhow::Result<Self> {
        let name = unique_name(&format!("e2e-{prefix}"));
        let ns: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": { E2E_LABEL: "true" } }
        }))?;
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        let guard = Self {
            name,
            deleted: false,
        };
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &guard.name);
        wait_for(
            &format!("ServiceAccount default in {}", guard.name),
            Duration::from_secs(30),
            async || Ok(sas.get_opt("default").await?.map(|_| ())),
        )
        .await?;
        Ok(guard)
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Deletes the namespace now (instead of on drop).
    pub async fn delete(mut self, client: &Client) -> anyhow::Result<()> {
        self.deleted = true;
        delete_namespace(client, &self.name).await
    }
}

async fn delete_namespace(client: &Client, name: &str) -> anyhow::Result<()> {
    match Api::<Namespace>::all(client.clone())
        .delete(name, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting namespace {name}")),
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.deleted || std::env::var_os("VPA_E2E_KEEP_NAMESPACES").is_some() {
            return;
        }
        let name = self.name.clone();
        // A fresh runtime and client on another thread: Drop may run inside (or after) the
        // test's runtime, where blocking on it is not possible.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let fut = async {
                    let client = client().await?;
                    delete_namespace(&client, &name).await
                };
                match tokio::time::timeout(Duration::from_secs(10), fut).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("warning: cleaning up namespace {name}: {e:#}"),
                    Err(_) => eprintln!("warning: cleaning up namespace {name}: timed out"),
                }
            });
        });
        let _ = handle.join();
    }
}

/// Polls `f` (every 100 ms, backing off to 1 s) until it returns `Ok(Some(_))`. Errors are
/// retried; after `timeout` it fails with the last error or a "timed out waiting for" message.
pub async fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut f: impl AsyncFnMut() -> anyhow::Result<Option<T>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let mut delay = Duration::from_millis(100);
    loop {
        let last_err = match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            return Err(match last_err {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow::anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Runs a future with a time limit and a readable error.
pub async fn with_timeout<T>(
    what: &str,
    timeout: Duration,
    fut: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| anyhow::anyhow!("timed out after {timeout:?}: {what}"))?
}

/// The HTTP status code of an API error, if it is one.
pub fn api_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// Parses every YAML document of a file into JSON values (empty documents are skipped).
pub fn yaml_documents(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let value = serde_json::Value::deserialize(doc)
            .with_context(|| format!("parsing {}", path.display()))?;
        if !value.is_null() {
            out.push(value);
        }
    }
    Ok(out)
}

/// True when the pod is Running and Ready and every container is ready, started and running
/// (what the kubelet stand-in reports for pods on fake nodes).
pub fn pod_running_and_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    if status.phase.as_deref() != Some("Running") {
        return false;
    }
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    let containers = status.container_statuses.as_deref().unwrap_or_default();
    let n_spec = pod.spec.as_ref().map_or(0, |s| s.containers.len());
    ready
        && containers.len() == n_spec
        && containers.iter().all(|c| {
            c.ready
                && c.started == Some(true)
                && c.state
                    .as_ref()
                    .and_then(|s| s.running.as_ref())
                    .is_some_and(|r| r.started_at.is_some())
        })
}

/// Where the upstream VPA example manifests are: `core/tests/data/upstream-examples` if
/// present, else the shared reference copy.
pub fn upstream_examples_dir() -> anyhow::Result<PathBuf> {
    let candidates = [
        repo_root().join("core/tests/data/upstream-examples"),
        PathBuf::from("/work/shared/reference/examples"),
    ];
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .with_context(|| format!("no upstream example directory among {candidates:?}"))
}

/// Spawns `cmd` (a component binary) with stdout and stderr to a new file `log`, `RUST_LOG`
/// set to `rust_log`, no stdin, and `kubeconfig` instead of `KUBECONFIG` when given.
pub fn spawn_logged(
    mut cmd: std::process::Command,
    log: &Path,
    rust_log: &str,
    kubeconfig: Option<&Path>,
) -> anyhow::Result<std::process::Child> {
    let out = std::fs::File::create(log)?;
    cmd.env("RUST_LOG", rust_log)
        .stdout(out.try_clone()?)
        .stderr(out)
        .stdin(std::process::Stdio::null());
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    cmd.spawn()
        .with_context(|| format!("starting {:?}", cmd.get_program()))
}
