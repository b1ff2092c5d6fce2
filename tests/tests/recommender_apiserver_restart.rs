//! The API server goes away and comes back: `vpa-recommender` (a child process) stays alive and
//! healthy through the outage, reconnects its watches and resumes writing recommendations, all
//! without restarting itself. The test runs its own control plane
//! ([`vpa_e2e::controlplane::OwnControlPlane`]) so that stopping it disturbs no other test; the
//! recommender reads usage straight from the fake metrics-server (`--metrics-url`), which stays up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Client;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_e2e::controlplane::OwnControlPlane;
use vpa_e2e::metrics_server::FakeMetricsServer;
use vpa_e2e::recommender::{RecommenderProcess, deployment, has_recommendation, vpa};
use vpa_e2e::{no_cluster_mode, wait_for};

const WAIT: Duration = Duration::from_secs(90);
/// How long the API server stays down.
const OUTAGE: Duration = Duration::from_secs(10);
const NS: &str = "default";

async fn deploy(client: &Client, name: &str) -> anyhow::Result<()> {
    Api::<Deployment>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &deployment(name, 1)?)
        .await
        .with_context(|| format!("creating Deployment {name}"))?;
    Api::<VerticalPodAutoscaler>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &vpa(name, "Deployment", name)?)
        .await
        .with_context(|| format!("creating VPA {name}"))?;
    Ok(())
}

/// Reports 250m / 300Mi for every Running pod of [`NS`] once a second, as metrics-server would
/// (fresh timestamps each time). List errors (the API server is down) are skipped.
fn feed_metrics(server: Arc<FakeMetricsServer>, client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, NS);
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                for p in list.items {
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                        let name = p.metadata.name.unwrap_or_default();
                        server.set_pod(NS, &name, &[("app", "250m", "300Mi")]);
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

async fn wait_recommendation(
    vpas: &Api<VerticalPodAutoscaler>,
    name: &str,
    rec: &mut RecommenderProcess,
) -> anyhow::Result<VerticalPodAutoscaler> {
    let r = wait_for(
        &format!("a recommendation for VPA {name}"),
        WAIT,
        async || {
            let v = vpas.get(name).await?;
            Ok(has_recommendation(&v).then_some(v))
        },
    )
    .await;
    r.map_err(|e| e.context(rec.describe()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recommender_survives_api_server_restart_and_resumes() -> anyhow::Result<()> {
    if no_cluster_mode() {
        eprintln!("SKIPPED recommender_survives_api_server_restart: VPA_TEST_NO_CLUSTER=1");
        return Ok(());
    }
    let t0 = Instant::now();
    let mut cp = OwnControlPlane::start().await?;
    let started = t0.elapsed();
    let client = cp.client().await?;
    let server = Arc::new(FakeMetricsServer::start().await?);
    let feeder = feed_metrics(server.clone(), client.clone());
    let dir = tempfile::tempdir()?;
    let ca = dir.path().join("metrics-ca.pem");
    std::fs::write(&ca, server.ca_pem())?;
    let token = dir.path().join("metrics-token");
    std::fs::write(&token, server.token())?;
    let args = [
        format!("--metrics-url={}", server.base_url()),
        format!("--metrics-ca-file={}", ca.display()),
        format!("--metrics-token-file={}", token.display()),
    ];
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), NS);

    deploy(&client, "before").await?;
    let mut rec =
        RecommenderProcess::start(dir.path(), "restart", Some(&cp.kubeconfig_path()), &args)?;
    let pid = rec.pid();
    let t1 = Instant::now();
    wait_recommendation(&vpas, "before", &mut rec).await?;
    let first = t1.elapsed();

    // The API server goes away (SIGTERM to the whole control plane) and stays down for OUTAGE:
    // the recommender keeps running and stays live (its liveness limit is 5 intervals = 10 s).
    let t2 = Instant::now();
    cp.stop().await?;
    let stopped = t2.elapsed();
    let t2 = Instant::now();
    let mut probes = 0;
    while t2.elapsed() < OUTAGE {
        tokio::time::sleep(Duration::from_secs(1)).await;
        ensure!(
            rec.alive(),
            "the recommender exited during the outage; {}",
            rec.describe()
        );
        let health = rec.http_get("/healthz");
        ensure!(
            matches!(health, Ok((200, _))),
            "/healthz during the outage ({:?} in): {health:?}; {}",
            t2.elapsed(),
            rec.describe()
        );
        probes += 1;
    }
    let t3 = Instant::now();
    cp.restart().await?;
    let restarted = t3.elapsed();
    ensure!(cp.starts() == 2);
    ensure!(
        rec.alive(),
        "the recommender exited around the restart; {}",
        rec.describe()
    );
    let health = rec.http_get("/healthz");
    ensure!(
        matches!(health, Ok((200, _))),
        "/healthz after the restart: {health:?}; {}",
        rec.describe()
    );

    // New objects after the restart get a recommendation: the watches reconnected (the VPA and
    // its pod are only known through them) and status writes resumed.
    let t4 = Instant::now();
    deploy(&client, "after").await?;
    wait_recommendation(&vpas, "after", &mut rec).await?;
    let second = t4.elapsed();
    let before = vpas.get("before").await?;
    ensure!(
        has_recommendation(&before),
        "the first VPA lost its recommendation: {:?}",
        before.status
    );

    // The same process all along, and it noticed the outage.
    ensure!(rec.alive(), "{}", rec.describe());
    ensure!(rec.pid() == pid);
    let logs = rec.logs();
    ensure!(
        logs.contains("watch failed"),
        "no watch error logged during the outage; log:\n{logs}"
    );
    let health = rec.http_get("/healthz");
    ensure!(
        matches!(health, Ok((200, _))),
        "/healthz at the end: {health:?}"
    );
    eprintln!(
        "timings: control plane up {started:?}, first recommendation {first:?}, stop {stopped:?}, then down for \
         {OUTAGE:?} ({probes} healthz probes ok), restart {restarted:?}, recommendation \
         for a VPA created after the restart {second:?}"
    );
    feeder.abort();
    Ok(())
}

/// The helper itself: a killed control plane comes back on the same URL with the same CA and
/// its objects, and a client made before the kill works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_control_plane_restarts_in_place_with_url_ca_and_objects() -> anyhow::Result<()> {
    if no_cluster_mode() {
        eprintln!("SKIPPED own_control_plane_restarts_in_place: VPA_TEST_NO_CLUSTER=1");
        return Ok(());
    }
    let mut cp = OwnControlPlane::start().await?;
    let url = cp.config().await?.cluster_url;
    let ca = std::fs::read(cp.dir().join("pki/ca.crt"))?;
    let kubeconfig = std::fs::read(cp.kubeconfig_path())?;
    let client = cp.client().await?;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    let cm: ConfigMap = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "survivor"}, "data": {"k": "v"}
    }))?;
    cms.create(&PostParams::default(), &cm).await?;

    let old_pid = cp.pid();
    cp.kill().await?;
    ensure!(!cp.is_running() && cp.pid().is_none());
    let down = tokio::time::timeout(Duration::from_secs(20), cms.get("survivor")).await;
    ensure!(
        !matches!(down, Ok(Ok(_))),
        "the API server answered while killed"
    );

    cp.restart().await?;
    ensure!(cp.is_running() && cp.pid() != old_pid && cp.starts() == 2);
    ensure!(cp.config().await?.cluster_url == url, "the URL changed");
    ensure!(
        std::fs::read(cp.dir().join("pki/ca.crt"))? == ca,
        "the CA changed"
    );
    ensure!(
        std::fs::read(cp.kubeconfig_path())? == kubeconfig,
        "the kubeconfig changed"
    );
    let got = cms
        .get("survivor")
        .await
        .context("the old client after the restart")?;
    ensure!(got.data.unwrap_or_default().get("k").map(String::as_str) == Some("v"));
    // The CRDs are still there and served.
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), NS);
    vpas.list(&ListParams::default()).await?;

    let dir = cp.dir().to_path_buf();
    drop(cp);
    ensure!(!dir.exists(), "{} left behind", dir.display());
    Ok(())
}
