//! End-to-end tests of `vpa-recommender` against the local control plane: the binary runs as
//! a child process (as in a cluster), reads usage from the fake metrics-server
//! (`vpa_e2e::metrics_server`) directly or through the aggregation layer, and writes VPA
//! statuses and checkpoints to the real API server. Each test has its own namespace and
//! recommender (`--vpa-object-namespace`), so tests run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use vpa_core::api::checkpoint::VerticalPodAutoscalerCheckpoint;
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_e2e::metrics_server::{FakeMetricsServer, Mode};
use vpa_e2e::recommender::{
    RecommenderProcess, condition, deployment, has_recommendation, target, vpa,
};
use vpa_e2e::{TestNamespace, cluster, wait_for};

const WAIT: Duration = Duration::from_secs(90);

/// Usage the feeder reports for every running pod of the namespace: (cpu, memory).
type Usage = Arc<Mutex<(String, String)>>;

/// Reports `usage` for every pod of `ns` once a second, as metrics-server would.
fn feed_metrics(
    server: Arc<FakeMetricsServer>,
    client: Client,
    ns: String,
    usage: Usage,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(client, &ns);
        loop {
            if let Ok(list) = pods.list(&ListParams::default()).await {
                let (cpu, mem) = usage.lock().unwrap().clone();
                for p in list.items {
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") {
                        server.set_pod(
                            &ns,
                            &p.metadata.name.unwrap_or_default(),
                            &[("app", &cpu, &mem)],
                        );
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
}

fn memory_bytes(q: &str) -> i64 {
    vpa_core::quantity::parse(q).unwrap().value()
}

fn cpu_millis(q: &str) -> i64 {
    vpa_core::quantity::parse(q).unwrap().milli_value()
}

async fn wait_vpa(
    vpas: &Api<VerticalPodAutoscaler>,
    name: &str,
    what: &str,
    rec: &mut RecommenderProcess,
    pred: impl Fn(&VerticalPodAutoscaler) -> bool,
) -> anyhow::Result<VerticalPodAutoscaler> {
    let r = wait_for(what, WAIT, async || {
        let v = vpas.get(name).await?;
        Ok(pred(&v).then_some(v))
    })
    .await;
    match r {
        Ok(v) => Ok(v),
        Err(e) => {
            let alive = rec.alive();
            Err(e.context(format!(
                "recommender alive: {alive}; its log:\n{}",
                rec.logs()
            )))
        }
    }
}

struct Setup {
    client: Client,
    ns: TestNamespace,
    dir: tempfile::TempDir,
    server: Arc<FakeMetricsServer>,
    usage: Usage,
    feeder: tokio::task::JoinHandle<()>,
}

impl Setup {
    async fn new(client: Client, prefix: &str) -> anyhow::Result<Self> {
        let ns = TestNamespace::create(&client, prefix).await?;
        let server = Arc::new(FakeMetricsServer::start().await?);
        let usage: Usage = Arc::new(Mutex::new(("250m".into(), "300Mi".into())));
        let feeder = feed_metrics(
            server.clone(),
            client.clone(),
            ns.name().to_string(),
            usage.clone(),
        );
        Ok(Self {
            client,
            ns,
            dir: tempfile::tempdir()?,
            server,
            usage,
            feeder,
        })
    }

    fn direct_args(&self) -> anyhow::Result<Vec<String>> {
        let ca = self.dir.path().join("metrics-ca.pem");
        std::fs::write(&ca, self.server.ca_pem())?;
        let token = self.dir.path().join("metrics-token");
        std::fs::write(&token, self.server.token())?;
        Ok(vec![
            format!("--vpa-object-namespace={}", self.ns.name()),
            format!("--metrics-url={}", self.server.base_url()),
            format!("--metrics-ca-file={}", ca.display()),
            format!("--metrics-token-file={}", token.display()),
        ])
    }

    async fn deploy(&self, name: &str, replicas: i32) -> anyhow::Result<()> {
        let deps: Api<Deployment> = Api::namespaced(self.client.clone(), self.ns.name());
        deps.create(&PostParams::default(), &deployment(name, replicas)?)
            .await?;
        let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(self.client.clone(), self.ns.name());
        vpas.create(&PostParams::default(), &vpa(name, "Deployment", name)?)
            .await?;
        Ok(())
    }

    fn vpas(&self) -> Api<VerticalPodAutoscaler> {
        Api::namespaced(self.client.clone(), self.ns.name())
    }

    async fn finish(self) -> anyhow::Result<()> {
        self.feeder.abort();
        self.ns.delete(&self.client).await
    }
}

#[tokio::test]
async fn recommendation_from_direct_metrics_with_conditions_and_checkpoints() -> anyhow::Result<()>
{
    let Some(client) = cluster("recommendation_from_direct_metrics").await? else {
        return Ok(());
    };
    let s = Setup::new(client.clone(), "rec-direct").await?;
    s.deploy("web", 2).await?;
    // A VPA whose target does not exist, and one for a Deployment an HPA scales on CPU.
    s.vpas()
        .create(
            &PostParams::default(),
            &vpa("ghost", "Deployment", "missing")?,
        )
        .await?;
    s.deploy("scaled", 1).await?;
    let hpa: HorizontalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "scaled-hpa"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "scaled"},
                 "minReplicas": 1, "maxReplicas": 3,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                     "target": {"type": "Utilization", "averageUtilization": 70}}}]}
    }))?;
    Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), s.ns.name())
        .create(&PostParams::default(), &hpa)
        .await?;

    let mut rec = RecommenderProcess::start(s.dir.path(), "direct", None, &s.direct_args()?)?;
    // Before the first samples the recommendation is the minimum (25m, 250Mi), as upstream's:
    // wait for one that reflects the usage.
    let v = wait_vpa(
        &s.vpas(),
        "web",
        "a recommendation for web from usage",
        &mut rec,
        |v| has_recommendation(v) && target(v).is_some_and(|(c, _)| cpu_millis(&c) >= 250),
    )
    .await?;
    let (cpu, mem) = target(&v).unwrap();
    // 250m and 300Mi of usage: target = bucket of the 90th percentile + 15 %.
    ensure!((250..400).contains(&cpu_millis(&cpu)), "cpu target {cpu}");
    ensure!(
        (300 << 20..400 << 20).contains(&memory_bytes(&mem)),
        "memory target {mem}"
    );
    ensure!(condition(&v, "NoPodsMatched").is_none());
    ensure!(v.status.as_ref().unwrap().observed_generation == v.metadata.generation);

    let ghost = wait_vpa(
        &s.vpas(),
        "ghost",
        "ConfigUnsupported on ghost",
        &mut rec,
        |v| condition(v, "ConfigUnsupported").is_some_and(|c| c.status == "True"),
    )
    .await?;
    let msg = condition(&ghost, "ConfigUnsupported")
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    ensure!(
        msg.contains("Cannot read targetRef") || msg.contains("missing"),
        "message: {msg}"
    );
    ensure!(condition(&ghost, "NoPodsMatched").is_some_and(|c| c.status == "True"));

    let scaled = wait_vpa(
        &s.vpas(),
        "scaled",
        "HPAConflict on scaled",
        &mut rec,
        |v| condition(v, "HPAConflict").is_some_and(|c| c.status == "True"),
    )
    .await?;
    let msg = condition(&scaled, "HPAConflict")
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    ensure!(
        msg.contains("scaled-hpa") && msg.contains("cpu"),
        "message: {msg}"
    );

    // Checkpoints, readable as upstream's format.
    let cps: Api<VerticalPodAutoscalerCheckpoint> = Api::namespaced(client.clone(), s.ns.name());
    let cp = wait_for("checkpoint web-app", WAIT, async || {
        Ok(cps.get_opt("web-app").await?)
    })
    .await?;
    let st = cp.status.as_ref().context("checkpoint status")?;
    ensure!(st.version.as_deref() == Some("v3"));
    ensure!(st.total_samples_count.unwrap_or(0) > 0);
    ensure!(cp.spec.vpa_object_name.as_deref() == Some("web"));

    // Steady state: no status writes while nothing changes... the recommendation changes
    // only when a percentile bucket does; at constant usage the bounds still move with the
    // confidence, so just check the admin endpoints and metrics.
    ensure!(rec.http_get("/healthz")?.0 == 200);
    ensure!(rec.http_get("/readyz")?.0 == 200);
    ensure!(rec.metric("vpa_recommender_metrics_api_available") == Some(1.0));
    ensure!(
        rec.metric("vpa_recommender_execution_latency_seconds_count{step=\"total\"}")
            .unwrap_or(0.0)
            >= 1.0
    );
    ensure!(
        rec.metric("vpa_recommender_aggregate_container_states_count")
            .unwrap_or(0.0)
            >= 2.0
    );

    // SIGTERM: exits 0 after writing checkpoints.
    let status = rec.sigterm()?;
    ensure!(
        status.success(),
        "exit status {status}; log:\n{}",
        rec.logs()
    );
    ensure!(
        rec.logs().contains("checkpoints written"),
        "log:\n{}",
        rec.logs()
    );
    s.finish().await
}

#[tokio::test]
async fn kill_9_and_restart_keeps_recommendation_and_memory_peak() -> anyhow::Result<()> {
    let Some(client) = cluster("kill_9_and_restart").await? else {
        return Ok(());
    };
    let s = Setup::new(client.clone(), "rec-restart").await?;
    s.deploy("web", 1).await?;
    let args = s.direct_args()?;
    let mut rec = RecommenderProcess::start(s.dir.path(), "first", None, &args)?;
    wait_vpa(
        &s.vpas(),
        "web",
        "a first recommendation",
        &mut rec,
        has_recommendation,
    )
    .await?;
    // A memory spike inside the open 24 h window: only the window's peak holds it.
    *s.usage.lock().unwrap() = ("250m".into(), "1500Mi".into());
    let spiked = wait_vpa(
        &s.vpas(),
        "web",
        "the spike in the memory target",
        &mut rec,
        |v| target(v).is_some_and(|(_, m)| memory_bytes(&m) > 1500 << 20),
    )
    .await?;
    let _ = spiked;
    *s.usage.lock().unwrap() = ("250m".into(), "300Mi".into());
    // Freeze: no more samples, then let a couple of cycles write status and checkpoints.
    s.server.set_mode(Mode::Unavailable);
    let cps: Api<VerticalPodAutoscalerCheckpoint> = Api::namespaced(client.clone(), s.ns.name());
    wait_vpa(&s.vpas(), "web", "MetricsUnavailable", &mut rec, |v| {
        condition(v, "MetricsUnavailable").is_some_and(|c| c.status == "True")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = s.vpas().get("web").await?;
    let cp = cps.get("web-app").await?;
    let windows = cp
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("vpa-rs.io/memory-window-peaks"))
        .cloned()
        .unwrap_or_default();
    ensure!(
        windows.contains("peakBytes"),
        "open window annotation: {windows:?}"
    );
    rec.kill9();

    // Remove the status, so the restarted recommender has to compute it again.
    s.vpas()
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": null})),
        )
        .await?;
    let mut rec = RecommenderProcess::start(s.dir.path(), "second", None, &args)?;
    let after = wait_vpa(
        &s.vpas(),
        "web",
        "the recommendation after restart",
        &mut rec,
        has_recommendation,
    )
    .await?;
    let rb = &before.status.as_ref().unwrap().recommendation;
    let ra = &after.status.as_ref().unwrap().recommendation;
    ensure!(
        rb == ra,
        "before kill -9: {rb:?}\nafter restart: {ra:?}\nlog:\n{}",
        rec.logs()
    );
    ensure!(rec.alive());
    s.finish().await
}

#[tokio::test]
async fn aggregated_metrics_api_outage_is_reported_and_recovered() -> anyhow::Result<()> {
    let Some(client) = cluster("aggregated_metrics_api_outage").await? else {
        return Ok(());
    };
    let s = Setup::new(client.clone(), "rec-aggr").await?;
    s.deploy("web", 1).await?;
    let registration = s.server.register_apiservice(client.clone()).await?;
    let mut rec = RecommenderProcess::start(
        s.dir.path(),
        "aggregated",
        None,
        &[format!("--vpa-object-namespace={}", s.ns.name())],
    )?;
    wait_vpa(
        &s.vpas(),
        "web",
        "a recommendation through metrics.k8s.io",
        &mut rec,
        has_recommendation,
    )
    .await?;
    ensure!(
        s.server.proxied_request_count() > 0,
        "the aggregator was not used"
    );

    // metrics-server goes away: the APIService answers 503.
    s.server.set_mode(Mode::Unavailable);
    registration.recheck().await?;
    let down = wait_vpa(&s.vpas(), "web", "MetricsUnavailable", &mut rec, |v| {
        condition(v, "MetricsUnavailable").is_some_and(|c| c.status == "True")
    })
    .await?;
    let msg = condition(&down, "MetricsUnavailable")
        .unwrap()
        .message
        .clone()
        .unwrap_or_default();
    ensure!(
        msg.contains("v1beta1.metrics.k8s.io") && msg.contains("metrics-server"),
        "message: {msg}"
    );
    ensure!(has_recommendation(&down), "the last recommendation is kept");
    ensure!(rec.alive());
    ensure!(rec.metric("vpa_recommender_metrics_api_available") == Some(0.0));
    ensure!(
        rec.http_get("/healthz")?.0 == 200,
        "still healthy: it keeps running its loop"
    );
    let logs = rec.logs();
    ensure!(logs.contains("cannot read container usage"), "log:\n{logs}");

    // Back: the condition goes away.
    s.server.set_mode(Mode::Serving);
    registration.recheck().await?;
    wait_vpa(
        &s.vpas(),
        "web",
        "MetricsUnavailable removed",
        &mut rec,
        |v| condition(v, "MetricsUnavailable").is_none(),
    )
    .await?;
    ensure!(rec.metric("vpa_recommender_metrics_api_available") == Some(1.0));
    registration.remove().await?;
    s.finish().await
}

#[tokio::test]
async fn leader_election_one_works_standby_takes_over_on_sigterm() -> anyhow::Result<()> {
    let Some(client) = cluster("leader_election").await? else {
        return Ok(());
    };
    let s = Setup::new(client.clone(), "rec-leader").await?;
    s.deploy("web", 1).await?;
    let mut args = s.direct_args()?;
    args.extend([
        "--leader-elect=true".to_string(),
        format!("--leader-elect-resource-namespace={}", s.ns.name()),
        "--leader-elect-resource-name=recommender-lease".to_string(),
        "--leader-elect-lease-duration=4s".to_string(),
        "--leader-elect-renew-deadline=3s".to_string(),
        "--leader-elect-retry-period=1s".to_string(),
    ]);
    let mut a = RecommenderProcess::start(s.dir.path(), "a", None, &args)?;
    wait_vpa(
        &s.vpas(),
        "web",
        "a recommendation from the leader",
        &mut a,
        has_recommendation,
    )
    .await?;
    let mut b = RecommenderProcess::start(s.dir.path(), "b", None, &args)?;
    let cycles = |r: &RecommenderProcess| {
        r.metric("vpa_recommender_execution_latency_seconds_count{step=\"total\"}")
            .unwrap_or(0.0)
    };
    // b is up (its admin port answers) but only stands by.
    wait_for("b's admin port", WAIT, async || {
        Ok(b.http_get("/healthz").ok().map(|_| ()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(6)).await;
    ensure!(cycles(&a) >= 2.0, "the leader works");
    ensure!(
        cycles(&b) == 0.0,
        "the standby does not (b log:\n{})",
        b.logs()
    );
    // The leader leaves: it releases the lease, and b takes over well before it would expire.
    let status = a.sigterm()?;
    ensure!(
        status.success(),
        "leader exit status {status}; log:\n{}",
        a.logs()
    );
    let took_over = std::time::Instant::now();
    wait_for("b to take over", WAIT, async || {
        Ok((cycles(&b) >= 1.0).then_some(()))
    })
    .await?;
    ensure!(
        took_over.elapsed() < Duration::from_secs(15),
        "takeover took {:?}",
        took_over.elapsed()
    );
    ensure!(b.alive());
    s.finish().await
}
