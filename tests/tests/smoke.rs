//! Smoke tests that prove the e2e harness: the local control plane (real kube-apiserver,
//! controller-manager, scheduler, kubelet stand-in) behaves like a cluster for what the VPA
//! needs. Run with `scripts/test` (see `docs/controlplane.md`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, EvictParams, GroupVersionKind, ListParams,
    Patch, PatchParams, PostParams,
};
use serde_json::json;
use vpa_e2e::{
    FAKE_NODE_LABEL, K8S_VERSION, TestNamespace, api_code, cluster, pod_running_and_ready, tool,
    upstream_examples_dir, wait_for, yaml_documents,
};

const WAIT: Duration = Duration::from_secs(60);

fn vpa_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("autoscaling.k8s.io", "v1", "VerticalPodAutoscaler"),
        "verticalpodautoscalers",
    )
}

fn deployment(name: &str, replicas: i32, cpu: &str, memory: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": name },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": {
                    "terminationGracePeriodSeconds": 0,
                    "containers": [{
                        "name": "app",
                        "image": "registry.k8s.io/pause:3.10",
                        "resources": {
                            "requests": { "cpu": cpu, "memory": memory },
                            "limits": { "memory": memory }
                        }
                    }]
                }
            }
        }
    }))
    .unwrap()
}

/// Waits until `n` pods with `app=<app>` are Running/Ready on fake nodes; returns them.
async fn running_pods(client: &Client, ns: &str, app: &str, n: usize) -> anyhow::Result<Vec<Pod>> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let lp = ListParams::default().labels(&format!("app={app}"));
    wait_for(
        &format!("{n} Running/Ready pods app={app} in {ns}"),
        WAIT,
        async || {
            let list = pods.list(&lp).await?;
            let ready: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none() && pod_running_and_ready(p))
                .collect();
            Ok((ready.len() == n).then_some(ready))
        },
    )
    .await
}

async fn fake_node_names(client: &Client) -> anyhow::Result<BTreeSet<String>> {
    let nodes: Api<Node> = Api::all(client.clone());
    let list = nodes
        .list(&ListParams::default().labels(&format!("{FAKE_NODE_LABEL}=true")))
        .await?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect())
}

#[tokio::test]
async fn server_reports_kubernetes_1_37() -> anyhow::Result<()> {
    let Some(client) = cluster("server_reports_kubernetes_1_37").await? else {
        return Ok(());
    };
    let info = client.apiserver_version().await?;
    ensure!(
        info.git_version == format!("v{K8S_VERSION}"),
        "/version reports {:?}, want v{K8S_VERSION}",
        info.git_version
    );
    ensure!(
        info.major == "1" && info.minor.starts_with("37"),
        "{info:?}"
    );
    Ok(())
}

#[tokio::test]
async fn crds_installed_and_upstream_examples_accepted() -> anyhow::Result<()> {
    let Some(client) = cluster("crds_installed_and_upstream_examples_accepted").await? else {
        return Ok(());
    };
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in [
        "verticalpodautoscalers.autoscaling.k8s.io",
        "verticalpodautoscalercheckpoints.autoscaling.k8s.io",
    ] {
        let crd = crds
            .get(name)
            .await
            .with_context(|| format!("CRD {name}"))?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        ensure!(established, "CRD {name} is not Established");
    }

    let ns = TestNamespace::create(&client, "examples").await?;
    let vpas: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &vpa_resource());
    let dir = upstream_examples_dir()?;
    let mut accepted = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    for file in files {
        for doc in yaml_documents(&file)? {
            if doc["kind"] != "VerticalPodAutoscaler" {
                continue;
            }
            let mut obj: DynamicObject = serde_json::from_value(doc)
                .with_context(|| format!("VPA in {}", file.display()))?;
            obj.metadata.namespace = Some(ns.name().to_string());
            // Several examples share a name (hamster-vpa): prefix it with the file name.
            let stem = file.file_stem().unwrap().to_string_lossy().to_string();
            let name = format!("{stem}-{}", obj.metadata.name.clone().unwrap_or_default());
            obj.metadata.name = Some(name.clone());
            let dry = PostParams {
                dry_run: true,
                ..PostParams::default()
            };
            vpas.create(&dry, &obj)
                .await
                .with_context(|| format!("dry-run create of {name} from {}", file.display()))?;
            vpas.create(&PostParams::default(), &obj)
                .await
                .with_context(|| format!("create of {name} from {}", file.display()))?;
            let back = vpas.get(&name).await?;
            ensure!(
                back.data["spec"]["targetRef"].is_object(),
                "{name}: {back:?}"
            );
            accepted.push(format!(
                "{}:{name}",
                file.file_name().unwrap().to_string_lossy()
            ));
        }
    }
    ensure!(
        accepted.len() >= 3,
        "only {accepted:?} upstream example VPAs found in {}",
        dir.display()
    );
    eprintln!("accepted upstream example VPAs: {accepted:?}");
    Ok(())
}

#[tokio::test]
async fn invalid_vpa_is_rejected_by_crd_validation() -> anyhow::Result<()> {
    let Some(client) = cluster("invalid_vpa_is_rejected_by_crd_validation").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "invalid").await?;
    let vpas: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &vpa_resource());
    let vpa = |name: &str, update_policy: serde_json::Value, resource_policy: serde_json::Value| {
        let mut spec = json!({
            "targetRef": { "apiVersion": "apps/v1", "kind": "Deployment", "name": "app" },
            "updatePolicy": update_policy,
        });
        if !resource_policy.is_null() {
            spec["resourcePolicy"] = resource_policy;
        }
        serde_json::from_value::<DynamicObject>(json!({
            "apiVersion": "autoscaling.k8s.io/v1",
            "kind": "VerticalPodAutoscaler",
            "metadata": { "name": name },
            "spec": spec,
        }))
        .unwrap()
    };
    let mut cases = vec![
        (
            "update-mode",
            vpa(
                "bad-mode",
                json!({ "updateMode": "Sometimes" }),
                json!(null),
            ),
            "updateMode",
        ),
        (
            "container-mode",
            vpa(
                "bad-container-mode",
                json!({ "updateMode": "Off" }),
                json!({ "containerPolicies": [{ "containerName": "*", "mode": "Bogus" }] }),
            ),
            "mode",
        ),
    ];
    // evictAfterOOMSeconds exists in the newer CRD (charts/vpa/crds), not in upstream 1.7.1.
    let crd: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crd.get("verticalpodautoscalers.autoscaling.k8s.io").await?;
    if serde_json::to_string(&crd.spec)?.contains("evictAfterOOMSeconds") {
        cases.push((
            "evict-after-oom-0",
            vpa(
                "bad-oom",
                json!({ "updateMode": "Auto", "evictAfterOOMSeconds": 0 }),
                json!(null),
            ),
            "evictAfterOOMSeconds",
        ));
    }
    // A valid one next to them, so the 422s are not a general failure.
    vpas.create(
        &PostParams::default(),
        &vpa("good", json!({ "updateMode": "Off" }), json!(null)),
    )
    .await
    .context("a valid VPA must be accepted")?;
    for (case, obj, field) in cases {
        match vpas.create(&PostParams::default(), &obj).await {
            Ok(_) => bail!("{case}: an invalid VPA was accepted"),
            Err(e) => {
                ensure!(api_code(&e) == Some(422), "{case}: want 422, got {e}");
                ensure!(
                    e.to_string().contains(field),
                    "{case}: error does not name {field}: {e}"
                );
                eprintln!("{case}: rejected as expected: {e}");
            }
        }
    }
    Ok(())
}

#[tokio::test]
async fn deployment_pods_are_scheduled_on_fake_nodes_and_running() -> anyhow::Result<()> {
    let Some(client) = cluster("deployment_pods_are_scheduled_on_fake_nodes_and_running").await?
    else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "deploy").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("web", 2, "100m", "64Mi"),
        )
        .await?;
    let pods = running_pods(&client, ns.name(), "web", 2).await?;
    let fake = fake_node_names(&client).await?;
    for pod in &pods {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default();
        ensure!(
            fake.contains(&node),
            "pod on {node:?}, not a fake node {fake:?}"
        );
        let status = pod.status.as_ref().unwrap();
        ensure!(
            status.pod_ip.is_some() && status.start_time.is_some(),
            "{status:?}"
        );
        let cs = &status.container_statuses.as_ref().unwrap()[0];
        let requests = cs
            .resources
            .as_ref()
            .and_then(|r| r.requests.clone())
            .unwrap_or_default();
        ensure!(
            requests.get("cpu").map(|q| q.0.as_str()) == Some("100m"),
            "container status resources do not mirror the spec: {cs:?}"
        );
        let owners = pod.metadata.owner_references.as_deref().unwrap_or_default();
        ensure!(
            owners.iter().any(|o| o.kind == "ReplicaSet"),
            "not owned by a ReplicaSet: {owners:?}"
        );
    }
    wait_for("Deployment web readyReplicas=2", WAIT, async || {
        let d = deployments.get("web").await?;
        Ok((d.status.and_then(|s| s.ready_replicas) == Some(2)).then_some(()))
    })
    .await?;
    Ok(())
}

#[tokio::test]
async fn eviction_blocked_by_pdb_is_refused_with_429() -> anyhow::Result<()> {
    let Some(client) = cluster("eviction_blocked_by_pdb_is_refused_with_429").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "pdb").await?;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(
            &PostParams::default(),
            &deployment("guarded", 2, "50m", "32Mi"),
        )
        .await?;
    let pods = running_pods(&client, ns.name(), "guarded", 2).await?;

    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), ns.name());
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": { "name": "guarded" },
        "spec": { "maxUnavailable": 0, "selector": { "matchLabels": { "app": "guarded" } } }
    }))?;
    pdbs.create(&PostParams::default(), &pdb).await?;
    let pdb_settled = async |allowed: i32| {
        wait_for(
            &format!("PDB status computed by controller-manager (disruptionsAllowed={allowed})"),
            WAIT,
            async || {
                let p = pdbs.get("guarded").await?;
                let generation = p.metadata.generation;
                Ok(p.status.filter(|s| {
                    s.observed_generation == generation
                        && s.expected_pods == 2
                        && s.current_healthy == 2
                        && s.disruptions_allowed == allowed
                }))
            },
        )
        .await
    };
    pdb_settled(0).await?;

    // Without kube's retry layer, which would retry the 429 for minutes.
    let api: Api<Pod> = Api::namespaced(vpa_e2e::client_without_retry().await?, ns.name());
    let victim = pods[0].metadata.name.clone().unwrap();
    match api.evict(&victim, &EvictParams::default()).await {
        Ok(s) => {
            bail!("eviction of {victim} covered by a PDB with maxUnavailable 0 succeeded: {s:?}")
        }
        Err(e) => {
            ensure!(api_code(&e) == Some(429), "want 429, got {e}");
            eprintln!("eviction refused as expected: {e}");
        }
    }

    // Let one disruption through: the eviction now succeeds, the stand-in finishes the
    // deletion and the ReplicaSet replaces the pod.
    pdbs.patch(
        "guarded",
        &PatchParams::default(),
        &Patch::Merge(json!({ "spec": { "maxUnavailable": 1 } })),
    )
    .await?;
    pdb_settled(1).await?;
    let victim_uid = pods[0].metadata.uid.clone().unwrap();
    api.evict(&victim, &EvictParams::default())
        .await
        .context("eviction allowed by the PDB")?;
    wait_for("evicted pod gone", WAIT, async || {
        Ok(match api.get_opt(&victim).await? {
            None => Some(()),
            Some(p) if p.metadata.uid.as_deref() != Some(victim_uid.as_str()) => Some(()),
            Some(_) => None,
        })
    })
    .await?;
    let again = running_pods(&client, ns.name(), "guarded", 2).await?;
    ensure!(
        again
            .iter()
            .all(|p| p.metadata.uid.as_deref() != Some(victim_uid.as_str())),
        "evicted pod still listed"
    );
    Ok(())
}

#[tokio::test]
async fn in_place_resize_is_applied_by_the_kubelet_stand_in() -> anyhow::Result<()> {
    let Some(client) = cluster("in_place_resize_is_applied_by_the_kubelet_stand_in").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "resize").await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": { "name": "resizable", "labels": { "app": "resizable" } },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": { "kubernetes.io/hostname": "vpa-node-small" },
            "containers": [{
                "name": "app",
                "image": "registry.k8s.io/pause:3.10",
                "resources": { "requests": { "cpu": "100m", "memory": "64Mi" } }
            }]
        }
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    running_pods(&client, ns.name(), "resizable", 1).await?;

    let resize = |cpu: &str| {
        Patch::Strategic(json!({
            "spec": { "containers": [{ "name": "app", "resources": { "requests": { "cpu": cpu } } }] }
        }))
    };
    pods.patch_subresource(
        "resize",
        "resizable",
        &PatchParams::default(),
        &resize("200m"),
    )
    .await
    .context("pods/resize to 200m")?;
    wait_for(
        "status.containerStatuses[0].resources.requests.cpu=200m",
        WAIT,
        async || {
            let p = pods.get("resizable").await?;
            let generation = p.metadata.generation;
            let status = p.status.unwrap_or_default();
            let cpu = status
                .container_statuses
                .unwrap_or_default()
                .first()
                .and_then(|c| c.resources.clone())
                .and_then(|r| r.requests)
                .and_then(|r| r.get("cpu").cloned());
            Ok(
                (cpu.is_some_and(|q| q.0 == "200m") && status.observed_generation == generation)
                    .then_some(()),
            )
        },
    )
    .await?;

    // The small node has 1 CPU: the PodResizeValidator admission plugin refuses more.
    match pods
        .patch_subresource("resize", "resizable", &PatchParams::default(), &resize("2"))
        .await
    {
        Ok(_) => bail!("a resize beyond the node's allocatable was accepted"),
        Err(e) => {
            ensure!(
                api_code(&e) == Some(403),
                "want 403 from PodResizeValidator, got {e}"
            );
            eprintln!("resize beyond allocatable refused as expected: {e}");
        }
    }
    pods.delete("resizable", &DeleteParams::default()).await?;
    Ok(())
}

fn helm(args: &[&str]) -> anyhow::Result<std::process::Output> {
    let helm = tool("helm")?;
    let home = std::env::temp_dir().join(vpa_e2e::unique_name("vpa-e2e-helm"));
    let out = std::process::Command::new(&helm)
        .args(args)
        .env("HELM_CACHE_HOME", home.join("cache"))
        .env("HELM_CONFIG_HOME", home.join("config"))
        .env("HELM_DATA_HOME", home.join("data"))
        .output()
        .with_context(|| format!("running {}", helm.display()))?;
    let _ = std::fs::remove_dir_all(&home);
    Ok(out)
}

fn helm_ok(args: &[&str]) -> anyhow::Result<String> {
    let out = helm(args)?;
    ensure!(
        out.status.success(),
        "helm {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn helm_available(test: &str) -> anyhow::Result<bool> {
    match tool("helm") {
        Ok(_) => Ok(true),
        Err(e) if vpa_e2e::no_cluster_mode() => {
            eprintln!("SKIPPED {test}: VPA_TEST_NO_CLUSTER=1 and {e}");
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

#[test]
fn helm_lints_and_templates_the_smoke_chart() -> anyhow::Result<()> {
    if !helm_available("helm_lints_and_templates_the_smoke_chart")? {
        return Ok(());
    }
    let chart = vpa_e2e::data_dir().join("smoke-chart");
    let chart = chart.to_str().unwrap();
    helm_ok(&["lint", "--strict", "--kube-version", K8S_VERSION, chart])?;
    let rendered = helm_ok(&[
        "template",
        "smoke",
        chart,
        "--namespace",
        "smoke",
        "--kube-version",
        K8S_VERSION,
    ])?;
    ensure!(rendered.contains("kind: ConfigMap"), "{rendered}");
    ensure!(
        rendered.contains(&format!("kubeVersion: \"v{K8S_VERSION}\"")),
        "{rendered}"
    );
    Ok(())
}

#[test]
fn helm_lints_and_templates_the_vpa_chart() -> anyhow::Result<()> {
    let chart = vpa_e2e::repo_root().join("charts/vpa");
    ensure!(
        chart.join("Chart.yaml").is_file(),
        "{} has no Chart.yaml",
        chart.display()
    );
    if !helm_available("helm_lints_and_templates_the_vpa_chart")? {
        return Ok(());
    }
    let chart = chart.to_str().unwrap();
    helm_ok(&["lint", "--strict", chart, "--kube-version", K8S_VERSION])?;
    let rendered = helm_ok(&[
        "template",
        "vpa",
        chart,
        "--namespace",
        "vpa-system",
        "--kube-version",
        K8S_VERSION,
        "--include-crds",
    ])?;
    for crd in [
        "verticalpodautoscalers.autoscaling.k8s.io",
        "verticalpodautoscalercheckpoints.autoscaling.k8s.io",
    ] {
        ensure!(
            rendered.contains(&format!("name: {crd}")),
            "{crd} missing from the render:\n{rendered}"
        );
    }
    Ok(())
}

#[tokio::test]
async fn helm_installs_into_the_local_control_plane() -> anyhow::Result<()> {
    let Some(client) = cluster("helm_installs_into_the_local_control_plane").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "helm").await?;
    let chart = vpa_e2e::data_dir().join("smoke-chart");
    let (chart, name) = (chart.to_str().unwrap().to_string(), ns.name().to_string());
    tokio::task::spawn_blocking(move || {
        helm_ok(&["install", "smoke", &chart, "--namespace", &name])?;
        helm_ok(&["status", "smoke", "--namespace", &name])
    })
    .await??;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), ns.name());
    let cm = cms
        .get("smoke-settings")
        .await
        .context("ConfigMap installed by helm")?;
    let data = cm.data.unwrap_or_default();
    ensure!(
        data.get("kubeVersion").map(String::as_str) == Some(&format!("v{K8S_VERSION}")),
        "helm install did not see the server version: {data:?}"
    );
    Ok(())
}
