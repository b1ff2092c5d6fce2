//! End-to-end tests of `vpa-updater` against the local control plane (controller-manager,
//! scheduler and the kubelet stand-in running): each test has its own namespace, its own
//! updater process scoped to it (`--vpa-object-namespace`, the admission status Lease read
//! from the same namespace) and, where pods must get new requests, its own webhook.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_e2e::admission::Webhook;
use vpa_e2e::updater::Updater;
use vpa_e2e::{TestNamespace, cluster, pod_running_and_ready, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// A Deployment of pause pods `app=<name>` with one container `app` and these requests,
/// optionally pinned to a node.
fn deployment(
    name: &str,
    replicas: i32,
    cpu: &str,
    memory: &str,
    node: Option<&str>,
) -> Deployment {
    let mut spec = json!({"terminationGracePeriodSeconds": 0, "containers": [{
        "name": "app", "image": "registry.k8s.io/pause:3.10",
        "resources": {"requests": {"cpu": cpu, "memory": memory}}}]});
    if let Some(n) = node {
        spec["nodeSelector"] = json!({"kubernetes.io/hostname": n});
    }
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}
    }))
    .unwrap()
}

/// A VPA for Deployment `name` in `mode` whose target, lower and upper bound are all
/// `cpu`/`memory` (so pods with other requests are outside the bounds and updated at once).
async fn vpa(
    client: &Client,
    ns: &str,
    name: &str,
    mode: &str,
    cpu: &str,
    memory: &str,
) -> anyhow::Result<()> {
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let v: VerticalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                 "updatePolicy": {"updateMode": mode}}
    }))?;
    vpas.create(&PostParams::default(), &v).await?;
    let r = json!({"cpu": cpu, "memory": memory});
    let rec = json!({"containerRecommendations": [{"containerName": "app",
        "target": r, "lowerBound": r, "upperBound": r, "uncappedTarget": r}]});
    vpas.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"recommendation": rec}})),
    )
    .await?;
    Ok(())
}

fn cpu_request(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers.first())
        .and_then(|c| c.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

async fn pods_of(client: &Client, ns: &str, app: &str) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    Ok(pods
        .list(&ListParams::default().labels(&format!("app={app}")))
        .await?
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect())
}

/// Waits until the Deployment has `n` running and ready pods; returns their uids.
async fn running(
    client: &Client,
    ns: &str,
    app: &str,
    n: usize,
) -> anyhow::Result<BTreeSet<String>> {
    wait_for(
        &format!("{n} running pods of {app}"),
        Duration::from_secs(90),
        async || {
            let pods = pods_of(client, ns, app).await?;
            let ready: BTreeSet<String> = pods
                .iter()
                .filter(|p| pod_running_and_ready(p))
                .filter_map(|p| p.metadata.uid.clone())
                .collect();
            Ok((pods.len() == n && ready.len() == n).then_some(ready))
        },
    )
    .await
}

async fn event_reasons(client: &Client, ns: &str) -> anyhow::Result<Vec<(String, String)>> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    Ok(events
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(|e| {
            (
                e.reason.unwrap_or_default(),
                e.regarding.and_then(|r| r.kind).unwrap_or_default(),
            )
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_far_below_its_target_is_evicted_and_recreated_with_the_target() -> anyhow::Result<()>
{
    let Some(client) = cluster("updater_evict").await? else {
        return Ok(());
    };
    let started = Instant::now();
    let ns = TestNamespace::create(&client, "updater-evict").await?;
    let dir = tempfile::tempdir()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "100m", "100Mi", None),
        )
        .await?;
    let before = running(&client, ns.name(), "web", 2).await?;
    vpa(&client, ns.name(), "web", "Recreate", "250m", "300Mi").await?;
    let hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    let updater = Updater::start(dir.path(), ns.name(), &[])?;
    updater.wait_ready().await?;
    // The whole loop: evicted, recreated by the ReplicaSet, given the target by our webhook.
    let pod = wait_for(
        "a recreated pod with the target",
        Duration::from_secs(90),
        async || {
            let pods = pods_of(&client, ns.name(), "web").await?;
            Ok(pods.into_iter().find(|p| {
                !before.contains(p.metadata.uid.as_deref().unwrap_or_default())
                    && cpu_request(p) == "250m"
            }))
        },
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{e}\n--- updater log ---\n{}\n--- webhook log ---\n{}",
            updater.logs(),
            hook.logs()
        )
    })?;
    assert_eq!(
        pod.annotations()
            .get("vpaObservedContainers")
            .map(String::as_str),
        Some("app")
    );
    assert!(
        updater.metric("vpa_updater_evicted_pods_total") >= 1.0,
        "{}",
        updater.metrics()
    );
    let reasons = wait_for("the eviction events", WAIT, async || {
        let r = event_reasons(&client, ns.name()).await?;
        let has = |reason: &str, kind: &str| r.iter().any(|(a, b)| a == reason && b == kind);
        Ok((has("EvictedByVPA", "Pod") && has("EvictedPod", "VerticalPodAutoscaler")).then_some(r))
    })
    .await?;
    assert!(!reasons.is_empty());
    eprintln!("evict e2e: {:?}", started.elapsed());
    hook.cleanup().await?;
    ns.delete(&client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_evicted_without_a_fresh_admission_status_lease() -> anyhow::Result<()> {
    let Some(client) = cluster("updater_stale_lease").await? else {
        return Ok(());
    };
    let started = Instant::now();
    let ns = TestNamespace::create(&client, "updater-stale").await?;
    let dir = tempfile::tempdir()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "100m", "100Mi", None),
        )
        .await?;
    let before = running(&client, ns.name(), "web", 2).await?;
    vpa(&client, ns.name(), "web", "Recreate", "250m", "300Mi").await?;
    let flags = [
        "--updater-interval=1s",
        "--admission-controller-status-lease-timeout=2s",
    ];
    let skipped = |u: &Updater| u.metric("vpa_updater_loops_total{result=\"skipped\"}");
    // No Lease at all.
    let updater = Updater::start(dir.path(), ns.name(), &flags)?;
    updater.wait_ready().await?;
    updater
        .wait_metric("loops skipped without a Lease", WAIT, |u| skipped(u) >= 2.0)
        .await?;
    assert_eq!(
        updater.metric("vpa_updater_loops_total{result=\"done\"}"),
        0.0
    );
    drop(updater);
    // A Lease renewed an hour ago, created longer ago than the timeout (a new Lease is
    // fresh by its creation time).
    let leases: Api<Lease> = Api::namespaced(client.clone(), ns.name());
    let old = (chrono::Utc::now() - chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let lease: Lease = serde_json::from_value(json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "vpa-admission-controller"},
        "spec": {"holderIdentity": "gone", "renewTime": old, "leaseDurationSeconds": 60}
    }))?;
    leases.create(&PostParams::default(), &lease).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let dir2 = tempfile::tempdir()?;
    let updater = Updater::start(dir2.path(), ns.name(), &flags)?;
    updater.wait_ready().await?;
    updater
        .wait_metric("loops skipped with a stale Lease", WAIT, |u| {
            skipped(u) >= 3.0
        })
        .await?;
    assert_eq!(updater.metric("vpa_updater_evicted_pods_total"), 0.0);
    assert_eq!(
        updater.metric("vpa_updater_loops_total{result=\"done\"}"),
        0.0,
        "{}",
        updater.logs()
    );
    let now: BTreeSet<String> = pods_of(&client, ns.name(), "web")
        .await?
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    assert_eq!(now, before, "{}", updater.logs());
    eprintln!("stale lease e2e: {:?}", started.elapsed());
    ns.delete(&client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_disruption_budget_refusal_is_counted_and_retried() -> anyhow::Result<()> {
    let Some(client) = cluster("updater_pdb").await? else {
        return Ok(());
    };
    let started = Instant::now();
    let ns = TestNamespace::create(&client, "updater-pdb").await?;
    let dir = tempfile::tempdir()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "100m", "100Mi", None),
        )
        .await?;
    let before = running(&client, ns.name(), "web", 2).await?;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns.name());
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "web"},
        "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "web"}}}
    }))?;
    pdbs.create(&PostParams::default(), &pdb).await?;
    // The disruption controller has computed the budget: nothing may be disrupted.
    wait_for("the PDB status", WAIT, async || {
        let p = pdbs.get("web").await?;
        let s = p.status.unwrap_or_default();
        Ok(
            (s.observed_generation == p.metadata.generation && s.current_healthy == 2)
                .then_some(()),
        )
    })
    .await?;
    vpa(&client, ns.name(), "web", "Recreate", "250m", "300Mi").await?;
    let hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    let updater = Updater::start(dir.path(), ns.name(), &["--updater-interval=1s"])?;
    updater.wait_ready().await?;
    let failed = |u: &Updater| u.metric("vpa_updater_failed_eviction_attempts_total");
    updater
        .wait_metric("refused evictions in several loops", WAIT, |u| {
            failed(u) >= 4.0 && u.loops().len() >= 2
        })
        .await?;
    assert_eq!(updater.metric("vpa_updater_evicted_pods_total"), 0.0);
    let now: BTreeSet<String> = pods_of(&client, ns.name(), "web")
        .await?
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    assert_eq!(now, before);
    // Refused in more than one loop: retried.
    let refusing_loops = updater
        .loops()
        .iter()
        .filter(|l| {
            l.get("eviction_failures")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                > 0
        })
        .count();
    assert!(refusing_loops >= 2, "{}", updater.logs());
    eprintln!("pdb e2e: {:?}", started.elapsed());
    hook.cleanup().await?;
    ns.delete(&client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resizes_when_the_node_has_room_and_evicts_when_it_has_not() -> anyhow::Result<()>
{
    let Some(client) = cluster("updater_in_place").await? else {
        return Ok(());
    };
    let started = Instant::now();
    let ns = TestNamespace::create(&client, "updater-inplace").await?;
    let dir = tempfile::tempdir()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("big", 2, "100m", "100Mi", Some("vpa-node-1")),
        )
        .await?;
    deployments
        .create(
            &PostParams::default(),
            &deployment("small", 2, "100m", "100Mi", Some("vpa-node-small")),
        )
        .await?;
    let big_before = running(&client, ns.name(), "big", 2).await?;
    let small_before = running(&client, ns.name(), "small", 2).await?;
    vpa(
        &client,
        ns.name(),
        "big",
        "InPlaceOrRecreate",
        "250m",
        "300Mi",
    )
    .await?;
    // Above the small node's 1 CPU: the API server refuses the resize (NodeCapacity).
    vpa(
        &client,
        ns.name(),
        "small",
        "InPlaceOrRecreate",
        "1500m",
        "300Mi",
    )
    .await?;
    let hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    let updater = Updater::start(dir.path(), ns.name(), &["--updater-interval=1s"])?;
    updater.wait_ready().await?;
    // Room on vpa-node-1: the same pods get the target in place.
    wait_for(
        "both big pods resized in place",
        Duration::from_secs(60),
        async || {
            let pods = pods_of(&client, ns.name(), "big").await?;
            Ok((pods.len() == 2
                && pods.iter().all(|p| {
                    cpu_request(p) == "250m"
                        && big_before.contains(p.metadata.uid.as_deref().unwrap_or_default())
                }))
            .then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n--- updater log ---\n{}", updater.logs()))?;
    let big = pods_of(&client, ns.name(), "big").await?;
    assert!(
        big.iter()
            .all(|p| p.annotations().get("vpaInPlaceUpdated").map(String::as_str) == Some("true"))
    );
    assert!(updater.metric("vpa_updater_in_place_updated_pods_total") >= 2.0);
    // No room on vpa-node-small: refused, then evicted.
    updater
        .wait_metric(
            "the small pods to be evicted after the refused resize",
            Duration::from_secs(60),
            |u| {
                u.metric("vpa_updater_evicted_pods_total") >= 1.0
                    && u.metric(
                        "vpa_updater_failed_in_place_update_attempts_total{reason=\"infeasible\"}",
                    ) >= 1.0
            },
        )
        .await?;
    let small_now: BTreeSet<String> = pods_of(&client, ns.name(), "small")
        .await?
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    assert!(small_now != small_before, "{}", updater.logs());
    let big_now: BTreeSet<String> = pods_of(&client, ns.name(), "big")
        .await?
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    assert_eq!(big_now, big_before, "big pods must not be evicted");
    eprintln!("in-place e2e: {:?}", started.elapsed());
    hook.cleanup().await?;
    ns.delete(&client).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evictions_of_a_large_deployment_keep_to_the_rate_limit_and_the_tolerance()
-> anyhow::Result<()> {
    let Some(client) = cluster("updater_rate_limit").await? else {
        return Ok(());
    };
    let started = Instant::now();
    let ns = TestNamespace::create(&client, "updater-rate").await?;
    let dir = tempfile::tempdir()?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 200, "10m", "10Mi", None),
        )
        .await?;
    running(&client, ns.name(), "web", 200).await?;
    vpa(&client, ns.name(), "web", "Recreate", "20m", "20Mi").await?;
    let hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    // Tolerance 5% of 200 = 10 per loop; the rate limit allows ~8 in a 4 s loop.
    let updater = Updater::start(
        dir.path(),
        ns.name(),
        &[
            "--updater-interval=4s",
            "--eviction-rate-limit=2",
            "--eviction-rate-burst=1",
            "--eviction-tolerance=0.05",
        ],
    )?;
    updater.wait_ready().await?;
    let t0 = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    while t0.elapsed() < Duration::from_secs(20) {
        samples.push((
            t0.elapsed().as_secs_f64(),
            updater.metric("vpa_updater_evicted_pods_total"),
        ));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let total = samples.last().map(|s| s.1).unwrap_or(0.0);
    assert!(
        total >= 10.0,
        "too few evictions: {total}\n{}",
        updater.logs()
    );
    // The observed rate never exceeds 2/s (plus the burst, plus one for sampling).
    for (i, (ti, ci)) in samples.iter().enumerate() {
        for (tj, cj) in &samples[i + 1..] {
            assert!(
                cj - ci <= 2.0 * (tj - ti) + 2.0,
                "{} evictions in {:.2}s",
                cj - ci,
                tj - ti
            );
        }
    }
    // No loop evicts more than the tolerance allows.
    for l in updater.loops() {
        let n = l.get("evicted").and_then(Value::as_u64).unwrap_or(0);
        assert!(n <= 10, "{l}");
    }
    eprintln!(
        "rate limit e2e: {:?}, {total} evictions in 20 s",
        started.elapsed()
    );
    hook.cleanup().await?;
    ns.delete(&client).await
}
