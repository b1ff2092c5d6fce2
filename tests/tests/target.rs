//! End-to-end tests of targetRef resolution (`vpa_recommender::target`) against the local
//! control plane: every well-known controller kind, a ReplicaSet owned by a Deployment (not
//! topmost), a custom resource with a `/scale` subresource (and a Deployment it owns), a kind
//! without `/scale`, and missing targets, with upstream's condition messages. Each test has
//! its own namespace; the custom-resource test installs its own CRD.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{ConfigMap, ReplicationController};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch,
    PatchParams, PostParams,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use vpa_core::labels::LabelSet;
use vpa_core::runtime::target::{
    NO_SCALE_SUBRESOURCE, ResolverOptions, TargetError, TargetRef, TargetResolver,
};
use vpa_e2e::{TestNamespace, cluster, unique_name, wait_for};

const WAIT: Duration = Duration::from_secs(60);

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn resolver(client: &Client) -> TargetResolver {
    TargetResolver::new(client.clone(), ResolverOptions::default())
}

fn pod_template(app: &str) -> Value {
    json!({
        "metadata": { "labels": { "app": app } },
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{ "name": "app", "image": "registry.k8s.io/pause:3.10" }]
        }
    })
}

async fn create<K>(client: &Client, ns: &str, obj: Value) -> anyhow::Result<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let obj: K = serde_json::from_value(obj)?;
    Api::<K>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &obj)
        .await
        .context("create")
}

/// Resolves `target` and checks that the selector selects `app=<app>` and not `app=other`.
async fn assert_selects(
    client: &Client,
    ns: &str,
    target: TargetRef,
    selected: &LabelSet,
) -> anyhow::Result<()> {
    let r = resolver(client)
        .resolve(ns, &target, Instant::now())
        .await
        .map_err(|e| anyhow::anyhow!("{target}: {}", e.condition_message()))?;
    ensure!(
        r.selector.matches(selected),
        "{target}: selector {:?} does not match {selected:?}",
        r.selector
    );
    ensure!(
        !r.selector.matches(&labels(&[("app", "other")])),
        "{target}: selector {:?} matches app=other",
        r.selector
    );
    ensure!(r.kind == target.kind && r.name == target.name && r.api_version == target.api_version);
    Ok(())
}

#[tokio::test]
async fn deployment_target_resolves_to_its_selector() -> anyhow::Result<()> {
    let Some(client) = cluster("deployment_target_resolves_to_its_selector").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-deploy").await?;
    let _: Deployment = create(&client, ns.name(), json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
        "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "web" },
                  "matchExpressions": [{ "key": "tier", "operator": "NotIn", "values": ["db"] }] },
                  "template": pod_template("web") }
    }))
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("apps/v1", "Deployment", "web"),
        &labels(&[("app", "web")]),
    )
    .await?;
    let r = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("apps/v1", "Deployment", "web"),
            Instant::now(),
        )
        .await
        .unwrap();
    ensure!(
        !r.selector
            .matches(&labels(&[("app", "web"), ("tier", "db")]))
    );
    // Upstream recognises well-known kinds by kind alone.
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("extensions/v1beta1", "Deployment", "web"),
        &labels(&[("app", "web")]),
    )
    .await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn stateful_set_target_resolves() -> anyhow::Result<()> {
    let Some(client) = cluster("stateful_set_target_resolves").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-sts").await?;
    let _: StatefulSet = create(&client, ns.name(), json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": { "name": "db" },
        "spec": { "replicas": 0, "serviceName": "db", "selector": { "matchLabels": { "app": "db" } },
                  "template": pod_template("db") }
    }))
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("apps/v1", "StatefulSet", "db"),
        &labels(&[("app", "db")]),
    )
    .await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn daemon_set_target_resolves() -> anyhow::Result<()> {
    let Some(client) = cluster("daemon_set_target_resolves").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-ds").await?;
    let mut template = pod_template("agent");
    // Keep it off the fake nodes: the test needs the object, not its pods.
    template["spec"]["nodeSelector"] = json!({ "vpa-rs.test/no-such-node": "true" });
    let _: DaemonSet = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": { "name": "agent" },
            "spec": { "selector": { "matchLabels": { "app": "agent" } }, "template": template }
        }),
    )
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("apps/v1", "DaemonSet", "agent"),
        &labels(&[("app", "agent")]),
    )
    .await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn replica_set_owned_by_a_deployment_is_not_topmost() -> anyhow::Result<()> {
    let Some(client) = cluster("replica_set_owned_by_a_deployment_is_not_topmost").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-rs").await?;
    let _: Deployment = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "web" } },
                      "template": pod_template("web") }
        }),
    )
    .await?;
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), ns.name());
    let rs = wait_for("the Deployment's ReplicaSet", WAIT, async || {
        Ok(rss
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .next())
    })
    .await?;
    let rs_name = rs.metadata.name.clone().unwrap();
    let err = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("apps/v1", "ReplicaSet", &rs_name),
            Instant::now(),
        )
        .await
        .expect_err("a ReplicaSet owned by a Deployment is not a valid target");
    ensure!(
        matches!(&err, TargetError::HasParent { parent, .. } if parent == "apps/v1.Deployment/web"),
        "{err:?}"
    );
    assert_eq!(
        err.condition_message(),
        format!(
            "The target apps/v1.ReplicaSet/{rs_name} has a parent controller but it should point \
             to a topmost well-known or scalable controller"
        )
    );

    // A ReplicaSet of its own is a valid target.
    let _: ReplicaSet = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": { "name": "alone" },
            "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "alone" } },
                      "template": pod_template("alone") }
        }),
    )
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("apps/v1", "ReplicaSet", "alone"),
        &labels(&[("app", "alone")]),
    )
    .await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn job_and_cron_job_targets_resolve() -> anyhow::Result<()> {
    let Some(client) = cluster("job_and_cron_job_targets_resolve").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-batch").await?;
    let mut template = pod_template("batch");
    template["spec"]["restartPolicy"] = json!("Never");
    let job: Job = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": { "name": "once" },
            "spec": { "suspend": true, "template": template.clone() }
        }),
    )
    .await?;
    // The API server generated the Job's selector (controller-uid); its pods carry it.
    let pod_labels: LabelSet = job
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .context("job template labels")?;
    let r = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("batch/v1", "Job", "once"),
            Instant::now(),
        )
        .await
        .map_err(|e| anyhow::anyhow!(e.condition_message()))?;
    ensure!(
        r.selector.matches(&pod_labels),
        "{:?} vs {pod_labels:?}",
        r.selector
    );
    ensure!(
        !r.selector.matches(&labels(&[("app", "batch")])),
        "needs the controller-uid"
    );

    let mut cron_template = template;
    cron_template["metadata"]["labels"] = json!({ "app": "nightly", "kind": "report" });
    let _: CronJob = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "nightly" },
            "spec": { "schedule": "0 3 * * *", "suspend": true,
                      "jobTemplate": { "spec": { "template": cron_template } } }
        }),
    )
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("batch/v1", "CronJob", "nightly"),
        &labels(&[
            ("app", "nightly"),
            ("kind", "report"),
            ("job-name", "nightly-1"),
        ]),
    )
    .await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn replication_controller_target_resolves() -> anyhow::Result<()> {
    let Some(client) = cluster("replication_controller_target_resolves").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-rc").await?;
    let _: ReplicationController = create(&client, ns.name(), json!({
        "apiVersion": "v1", "kind": "ReplicationController", "metadata": { "name": "legacy" },
        "spec": { "replicas": 0, "selector": { "app": "legacy" }, "template": pod_template("legacy") }
    }))
    .await?;
    assert_selects(
        &client,
        ns.name(),
        TargetRef::new("v1", "ReplicationController", "legacy"),
        &labels(&[("app", "legacy"), ("extra", "x")]),
    )
    .await?;
    ns.delete(&client).await
}

/// A CRD `<plural>.e2e.vpa-rs.test` with a scale subresource; deleted on drop.
struct ScalableCrd {
    client: Client,
    name: String,
    resource: ApiResource,
}

impl ScalableCrd {
    async fn install(client: &Client) -> anyhow::Result<Self> {
        let suffix = unique_name("s").replace('-', "");
        let plural = format!("scalers{suffix}");
        let kind = format!("Scaler{suffix}");
        let group = "e2e.vpa-rs.test";
        let name = format!("{plural}.{group}");
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": name },
            "spec": {
                "group": group, "scope": "Namespaced",
                "names": { "plural": plural, "singular": plural, "kind": kind },
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "subresources": {
                        "status": {},
                        "scale": { "specReplicasPath": ".spec.replicas",
                                   "statusReplicasPath": ".status.replicas",
                                   "labelSelectorPath": ".status.selector" }
                    },
                    "schema": { "openAPIV3Schema": { "type": "object", "properties": {
                        "spec": { "type": "object", "properties": { "replicas": { "type": "integer" } } },
                        "status": { "type": "object", "properties": {
                            "replicas": { "type": "integer" }, "selector": { "type": "string" } } }
                    } } }
                }]
            }
        }))?;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &crd)
            .await
            .context("creating the CRD")?;
        let this = Self {
            client: client.clone(),
            name: name.clone(),
            resource: ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, "v1", &kind),
                &plural,
            ),
        };
        wait_for(
            &format!("CRD {name} established and discovered"),
            WAIT,
            async || {
                let crd = crds.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if !established {
                    return Ok(None);
                }
                let g = kube::discovery::group(client, group).await?;
                Ok(g.recommended_kind(&kind).map(|_| ()))
            },
        )
        .await?;
        Ok(this)
    }
}

impl ScalableCrd {
    /// Deletes the CRD now (instead of on drop).
    async fn delete(mut self) -> anyhow::Result<()> {
        let name = std::mem::take(&mut self.name);
        Api::<CustomResourceDefinition>::all(self.client.clone())
            .delete(&name, &DeleteParams::background())
            .await
            .with_context(|| format!("deleting CRD {name}"))?;
        Ok(())
    }
}

impl Drop for ScalableCrd {
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        let name = self.name.clone();
        // A fresh runtime and client on another thread (the test's client belongs to the
        // test's runtime, which is blocked here).
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let fut = async {
                    let crds: Api<CustomResourceDefinition> = Api::all(vpa_e2e::client().await?);
                    crds.delete(&name, &DeleteParams::background()).await?;
                    anyhow::Ok(())
                };
                if let Ok(Err(e)) | Err(e) = tokio::time::timeout(Duration::from_secs(10), fut)
                    .await
                    .map_err(anyhow::Error::from)
                {
                    eprintln!("warning: deleting CRD {name}: {e:#}");
                }
            });
        });
        let _ = handle.join();
    }
}

#[tokio::test]
async fn custom_resource_with_scale_subresource_resolves() -> anyhow::Result<()> {
    let Some(client) = cluster("custom_resource_with_scale_subresource_resolves").await? else {
        return Ok(());
    };
    let crd = ScalableCrd::install(&client).await?;
    let ns = TestNamespace::create(&client, "target-cr").await?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &crd.resource);
    let kind = crd.resource.kind.clone();
    let api_version = crd.resource.api_version.clone();
    let obj: DynamicObject = serde_json::from_value(json!({
        "apiVersion": api_version, "kind": kind, "metadata": { "name": "roll" },
        "spec": { "replicas": 1 }
    }))?;
    let created = api.create(&PostParams::default(), &obj).await?;
    let target = TargetRef::new(&api_version, &kind, "roll");

    // No status yet: /scale reports an empty selector.
    let err = resolver(&client)
        .resolve(ns.name(), &target, Instant::now())
        .await
        .expect_err("an empty scale selector is invalid");
    ensure!(matches!(err, TargetError::Invalid { .. }), "{err:?}");
    assert_eq!(
        err.condition_message(),
        format!(
            "Cannot read targetRef. Reason: Unhandled targetRef {api_version} / {kind} / roll, \
             last error Resource {}/roll has an empty selector for scale sub-resource",
            ns.name()
        )
    );

    api.patch_status(
        "roll",
        &PatchParams::default(),
        &Patch::Merge(
            json!({ "status": { "replicas": 1, "selector": "app=roll,track in (stable,canary)" } }),
        ),
    )
    .await
    .context("setting status.selector")?;
    let r = resolver(&client)
        .resolve(ns.name(), &target, Instant::now())
        .await
        .map_err(|e| anyhow::anyhow!(e.condition_message()))?;
    ensure!(
        r.selector
            .matches(&labels(&[("app", "roll"), ("track", "canary")]))
    );
    ensure!(
        !r.selector
            .matches(&labels(&[("app", "roll"), ("track", "beta")]))
    );

    // A Deployment controlled by the scalable resource is not topmost.
    let uid = created.metadata.uid.clone().context("uid")?;
    let _: Deployment = create(&client, ns.name(), json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": "managed", "ownerReferences": [{
            "apiVersion": api_version, "kind": kind, "name": "roll", "uid": uid, "controller": true }] },
        "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "managed" } },
                  "template": pod_template("managed") }
    }))
    .await?;
    let err = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("apps/v1", "Deployment", "managed"),
            Instant::now(),
        )
        .await
        .expect_err("owned by a scalable resource");
    let want_parent = format!("{api_version}.{kind}/roll");
    ensure!(
        matches!(&err, TargetError::HasParent { parent, .. } if *parent == want_parent),
        "{err:?}"
    );

    // A missing object of the kind: the API server's NotFound text, wrapped as upstream does.
    let err = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new(&api_version, &kind, "nope"),
            Instant::now(),
        )
        .await
        .expect_err("missing");
    ensure!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.condition_message(),
        format!(
            "Cannot read targetRef. Reason: Unhandled targetRef {api_version} / {kind} / nope, \
             last error {} \"nope\" not found",
            crd.name
        )
    );
    ns.delete(&client).await?;
    crd.delete().await
}

#[tokio::test]
async fn kind_without_scale_subresource_is_unsupported() -> anyhow::Result<()> {
    let Some(client) = cluster("kind_without_scale_subresource_is_unsupported").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-cm").await?;
    let _: ConfigMap = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "cm" }, "data": {}
        }),
    )
    .await?;
    let err = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("v1", "ConfigMap", "cm"),
            Instant::now(),
        )
        .await
        .expect_err("ConfigMap has no /scale");
    ensure!(matches!(err, TargetError::Unsupported { .. }), "{err:?}");
    ensure!(!err.is_transient());
    assert_eq!(
        err.condition_message(),
        "Cannot read targetRef. Reason: Unhandled targetRef v1 / ConfigMap / cm, last error \
         the server could not find the requested resource"
    );
    // The resolver does not GET the missing subresource; check that its message is the
    // API server's.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), ns.name());
    match cms.get_scale("cm").await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 404);
            assert_eq!(s.message, NO_SCALE_SUBRESOURCE);
        }
        other => anyhow::bail!("GET configmaps/cm/scale: {other:?}"),
    }
    // A kind the API server does not serve at all.
    let err = resolver(&client)
        .resolve(
            ns.name(),
            &TargetRef::new("example.com/v1", "Nothing", "x"),
            Instant::now(),
        )
        .await
        .expect_err("unknown kind");
    ensure!(matches!(err, TargetError::Unsupported { .. }), "{err:?}");
    assert_eq!(
        err.condition_message(),
        "Cannot read targetRef. Reason: Unhandled targetRef example.com/v1 / Nothing / x, last \
         error no matches for kind \"Nothing\" in group \"example.com\""
    );
    ns.delete(&client).await
}

#[tokio::test]
async fn missing_deployment_is_not_found_and_cached_results_survive() -> anyhow::Result<()> {
    let Some(client) =
        cluster("missing_deployment_is_not_found_and_cached_results_survive").await?
    else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "target-missing").await?;
    let r = resolver(&client);
    let missing = TargetRef::new("apps/v1", "Deployment", "missing");
    let t0 = Instant::now();
    let err = r
        .resolve(ns.name(), &missing, t0)
        .await
        .expect_err("missing");
    ensure!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
    assert_eq!(
        err.condition_message(),
        format!(
            "Cannot read targetRef. Reason: Deployment {}/missing does not exist",
            ns.name()
        )
    );
    assert_eq!(r.exists_cached(ns.name(), &missing), Some(false));

    // A resolved Deployment is served from the cache until refresh_after, even once deleted;
    // after that the deletion is seen.
    let _: Deployment = create(
        &client,
        ns.name(),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "web" },
            "spec": { "replicas": 0, "selector": { "matchLabels": { "app": "web" } },
                      "template": pod_template("web") }
        }),
    )
    .await?;
    let web = TargetRef::new("apps/v1", "Deployment", "web");
    ensure!(r.exists_cached(ns.name(), &web).is_none(), "not asked yet");
    r.resolve(ns.name(), &web, t0)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    assert_eq!(r.exists_cached(ns.name(), &web), Some(true));
    Api::<Deployment>::namespaced(client.clone(), ns.name())
        .delete("web", &DeleteParams::default())
        .await?;
    wait_for("Deployment web gone", WAIT, async || {
        let d = Api::<Deployment>::namespaced(client.clone(), ns.name());
        Ok(d.get_opt("web").await?.is_none().then_some(()))
    })
    .await?;
    ensure!(
        r.resolve(ns.name(), &web, t0 + Duration::from_secs(30))
            .await
            .is_ok(),
        "fresh result served from the cache"
    );
    let err = r
        .resolve(ns.name(), &web, t0 + Duration::from_secs(700))
        .await
        .expect_err("expired entry is refetched");
    ensure!(matches!(err, TargetError::NotFound { .. }), "{err:?}");
    assert_eq!(r.exists_cached(ns.name(), &web), Some(false));
    ns.delete(&client).await
}
