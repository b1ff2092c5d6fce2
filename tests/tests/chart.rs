//! The Helm chart (`charts/vpa`), with helm built from Go modules (`scripts/build-tools`):
//! lint, a template matrix over the certificate modes and common values, one rejected values
//! file per schema rule, install/upgrade/uninstall into the local control plane, RBAC checked
//! with SubjectAccessReviews per ServiceAccount, and the three components run with their
//! ServiceAccounts' tokens (TokenRequest): a recommendation, a synced webhook index with its
//! status Lease, and an eviction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_e2e::admission::Webhook;
use vpa_e2e::metrics_server::FakeMetricsServer;
use vpa_e2e::recommender::{RecommenderProcess, deployment, has_recommendation, vpa};
use vpa_e2e::updater::Updater;
use vpa_e2e::{TestNamespace, cluster, repo_root, tool, unique_name, wait_for};

fn chart() -> PathBuf {
    repo_root().join("charts").join("vpa")
}

fn helm(args: &[&str]) -> anyhow::Result<(bool, String)> {
    let out = Command::new(tool("helm")?)
        .args(args)
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("vpa-e2e-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("vpa-e2e-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("vpa-e2e-helm/data"),
        )
        .output()?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// Renders the chart with `--set` pairs; the documents.
fn template(sets: &[&str]) -> anyhow::Result<Vec<Value>> {
    let chart = chart();
    let mut args = vec![
        "template",
        "t",
        chart.to_str().unwrap(),
        "--namespace",
        "vpa",
    ];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    let (ok, text) = helm(&args)?;
    ensure!(ok, "helm template {sets:?} failed:\n{text}");
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut k: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or(""),
                d["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect();
    k.sort();
    k
}

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["kind"] == kind
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(name_suffix))
    })
}

fn args_of(d: &Value) -> Vec<String> {
    d["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Facts every rendering must have: hardened pods with probes, no RBAC wildcards.
fn check_invariants(docs: &[Value]) {
    for d in docs.iter().filter(|d| d["kind"] == "Deployment") {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(
            pod["securityContext"]["runAsNonRoot"], true,
            "{}",
            d["metadata"]["name"]
        );
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
            assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
            assert!(
                c["resources"]["requests"]["cpu"].is_string(),
                "requests sized"
            );
        }
        assert!(pod["serviceAccountName"].is_string());
    }
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        for rule in d["rules"].as_array().unwrap() {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                for v in rule[field].as_array().into_iter().flatten() {
                    assert!(
                        !v.as_str().unwrap_or("").contains('*'),
                        "wildcard in {} {}: {rule}",
                        d["kind"],
                        d["metadata"]["name"]
                    );
                }
            }
        }
    }
}

#[test]
fn lint_and_template_matrix() -> anyhow::Result<()> {
    let chart = chart();
    let (ok, text) = helm(&["lint", "--strict", chart.to_str().unwrap()])?;
    assert!(ok, "{text}");

    // Default: cert-manager, two admission replicas with a PDB, leader election on.
    let docs = template(&[])?;
    check_invariants(&docs);
    let k = kinds(&docs);
    for want in [
        "Certificate/t-vpa-admission",
        "Issuer/t-vpa-selfsigned",
        "MutatingWebhookConfiguration/t-vpa-webhook-config",
        "PodDisruptionBudget/t-vpa-admission-controller",
        "Service/t-vpa-webhook",
        "Deployment/t-vpa-recommender",
        "Deployment/t-vpa-updater",
        "Deployment/t-vpa-admission-controller",
        "ServiceAccount/t-vpa-recommender",
        "ClusterRole/t-vpa-updater",
        "Role/t-vpa-admission-controller",
    ] {
        assert!(k.contains(&want.to_string()), "{want} missing from {k:?}");
    }
    let mwc = find(&docs, "MutatingWebhookConfiguration", "webhook-config").unwrap();
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "vpa/t-vpa-admission"
    );
    let hook = &mwc["webhooks"][0];
    assert_eq!(hook["failurePolicy"], "Ignore");
    assert_eq!(hook["timeoutSeconds"], 5);
    assert_eq!(hook["sideEffects"], "None");
    assert_eq!(
        hook["namespaceSelector"]["matchExpressions"][0]["values"],
        json!(["vpa"])
    );
    let rec = find(&docs, "Deployment", "recommender").unwrap();
    assert!(args_of(rec).contains(&"--leader-elect=true".to_string()));
    let upd = find(&docs, "Deployment", "updater").unwrap();
    assert!(
        args_of(upd).contains(&"--eviction-rate-limit=1".to_string()),
        "a safe rate by default"
    );
    let ac = find(&docs, "Deployment", "admission-controller").unwrap();
    assert!(args_of(ac).contains(&"--register-webhook=false".to_string()));
    assert_eq!(ac["spec"]["replicas"], 2);

    // Generated: the controller registers itself; one replica, no chart webhook, RBAC for it.
    let docs = template(&[
        "admissionController.certificates.mode=generated",
        "admissionController.replicas=1",
    ])?;
    check_invariants(&docs);
    assert!(find(&docs, "MutatingWebhookConfiguration", "").is_none());
    assert!(find(&docs, "PodDisruptionBudget", "").is_none());
    assert!(find(&docs, "Certificate", "").is_none());
    let ac = find(&docs, "Deployment", "admission-controller").unwrap();
    assert!(args_of(ac).contains(&"--register-webhook=true".to_string()));
    let role = find(&docs, "ClusterRole", "admission-controller").unwrap();
    assert!(role.to_string().contains("mutatingwebhookconfigurations"));

    // Secret: the caBundle comes from values, the Secret is mounted.
    let docs = template(&[
        "admissionController.certificates.mode=secret",
        "admissionController.certificates.secretName=my-tls",
        "admissionController.certificates.caBundle=PEM",
    ])?;
    check_invariants(&docs);
    let mwc = find(&docs, "MutatingWebhookConfiguration", "webhook-config").unwrap();
    assert_eq!(mwc["webhooks"][0]["clientConfig"]["caBundle"], "UEVN");
    let ac = find(&docs, "Deployment", "admission-controller").unwrap();
    assert_eq!(
        ac["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"],
        "my-tls"
    );
    let role = find(&docs, "ClusterRole", "admission-controller").unwrap();
    assert!(!role.to_string().contains("mutatingwebhookconfigurations"));

    // A values matrix.
    let docs = template(&[
        "recommender.enabled=false",
        "serviceMonitor.enabled=true",
        "updater.replicas=2",
        "rbac.scaleTargets[0].apiGroup=argoproj.io",
        "rbac.scaleTargets[0].resource=rollouts",
        "commonLabels.team=platform",
    ])?;
    check_invariants(&docs);
    assert!(find(&docs, "Deployment", "recommender").is_none());
    assert!(find(&docs, "ServiceMonitor", "updater").is_some());
    assert!(find(&docs, "ServiceMonitor", "recommender").is_none());
    let upd = find(&docs, "Deployment", "updater").unwrap();
    assert!(args_of(upd).contains(&"--leader-elect=true".to_string()));
    assert_eq!(upd["metadata"]["labels"]["team"], "platform");
    let role = find(&docs, "ClusterRole", "admission-controller").unwrap();
    assert!(role.to_string().contains("rollouts/scale"));
    let docs = template(&[
        "recommender.storage=prometheus",
        "updater.enabled=false",
        "admissionController.enabled=false",
    ])?;
    assert!(
        args_of(find(&docs, "Deployment", "recommender").unwrap())
            .contains(&"--prometheus-address=http://prometheus.monitoring.svc".to_string())
    );
    assert_eq!(
        kinds(&docs)
            .iter()
            .filter(|k| k.starts_with("Deployment/"))
            .count(),
        1
    );
    Ok(())
}

#[test]
fn rejected_values_say_what_is_wrong() -> anyhow::Result<()> {
    let dir = vpa_e2e::data_dir().join("chart").join("rejected");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    ensure!(
        files.len() >= 10,
        "expected the rejected values files in {}",
        dir.display()
    );
    let chart = chart();
    for f in files {
        let text = std::fs::read_to_string(&f)?;
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .with_context(|| format!("{}: no '# expect: ' line", f.display()))?;
        let (ok, out) = helm(&[
            "template",
            "t",
            chart.to_str().unwrap(),
            "-f",
            f.to_str().unwrap(),
        ])?;
        assert!(!ok, "{} was accepted", f.display());
        assert!(
            out.contains(expect),
            "{}: expected {expect:?} in:\n{out}",
            f.display()
        );
    }
    Ok(())
}

/// A CA and a serving certificate for the webhook Service, as PEM (ca, cert, key).
fn webhook_cert(service_dns: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "chart test CA");
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![service_dns.to_string()]).unwrap();
    let cert = leaf.signed_by(&key, &Issuer::new(ca, ca_key)).unwrap();
    (ca_pem, cert.pem(), key.serialize_pem())
}

/// One access question: may `sa` (in the release namespace) `verb` `group/resource/sub`
/// (`resource#name` for one named object) in namespace `ns` (`None`: cluster scope)?
struct Access<'a> {
    sa: &'a str,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    sub: &'a str,
    ns: Option<&'a str>,
    want: bool,
}

fn access<'a>(
    sa: &'a str,
    verb: &'a str,
    group: &'a str,
    resource: &'a str,
    sub: &'a str,
    ns: Option<&'a str>,
    want: bool,
) -> Access<'a> {
    Access {
        sa,
        verb,
        group,
        resource,
        sub,
        ns,
        want,
    }
}

async fn can(client: &Client, release_ns: &str, a: &Access<'_>) -> anyhow::Result<bool> {
    let sar = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(format!("system:serviceaccount:{release_ns}:{}", a.sa)),
            groups: Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{release_ns}"),
                "system:authenticated".into(),
            ]),
            resource_attributes: Some(ResourceAttributes {
                verb: Some(a.verb.into()),
                group: Some(a.group.into()),
                resource: Some(a.resource.split('#').next().unwrap_or(a.resource).into()),
                name: a.resource.split_once('#').map(|(_, n)| n.to_string()),
                subresource: (!a.sub.is_empty()).then(|| a.sub.to_string()),
                namespace: a.ns.map(String::from),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let api: Api<SubjectAccessReview> = Api::all(client.clone());
    let r = api.create(&PostParams::default(), &sar).await?;
    Ok(r.status.is_some_and(|s| s.allowed))
}

/// A kubeconfig that authenticates as ServiceAccount `sa` of `ns` with a token from the
/// TokenRequest API.
async fn token_kubeconfig(
    client: &Client,
    ns: &str,
    sa: &str,
    dir: &Path,
) -> anyhow::Result<PathBuf> {
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let tr = sas
        .create_token_request(
            sa,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..TokenRequestSpec::default()
                },
                ..TokenRequest::default()
            },
        )
        .await?;
    let token = tr.status.context("TokenRequest without status")?.token;
    kubeconfig_with_token(dir, sa, &token)
}

/// A kubeconfig for the cluster in `KUBECONFIG` that authenticates with `token`.
fn kubeconfig_with_token(dir: &Path, name: &str, token: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var("KUBECONFIG").context("KUBECONFIG")?;
    let admin: Value = serde_yaml::from_str(&std::fs::read_to_string(&path)?)?;
    let cluster = admin["clusters"][0]["cluster"].clone();
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "sa"}}],
        "current-context": "c"
    });
    let out = dir.join(format!("{name}-kubeconfig.yaml"));
    std::fs::write(&out, serde_yaml::to_string(&cfg)?)?;
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_rbac_upgrade_and_uninstall() -> anyhow::Result<()> {
    let Some(client) = cluster("chart_install").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "chart").await?;
    let release = unique_name("rel");
    let full = format!("{release}-vpa");
    let dir = tempfile::tempdir()?;
    let kubeconfig = std::env::var("KUBECONFIG")?;

    // secret mode: the TLS Secret exists before the install.
    let (ca, cert, key) = webhook_cert(&format!("{full}-webhook.{}.svc", ns.name()));
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "webhook-tls"},
        "stringData": {"ca.crt": ca, "tls.crt": cert, "tls.key": key}
    }))?;
    Api::<Secret>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &secret)
        .await?;
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        serde_yaml::to_string(&json!({
            "admissionController": {
                "certificates": {"mode": "secret", "secretName": "webhook-tls", "caBundle": ca},
                // Only pods nobody else creates, so other tests are not routed to a webhook
                // whose pods never run here.
                "webhook": {"objectSelector": {"matchLabels": {"vpa-rs.test/chart": release.clone()}}}
            }
        }))?,
    )?;
    let chart = chart();
    let (ok, out) = helm(&[
        "install",
        &release,
        chart.to_str().unwrap(),
        "--namespace",
        ns.name(),
        "--kubeconfig",
        &kubeconfig,
        "-f",
        values.to_str().unwrap(),
        "--wait=false",
    ])?;
    ensure!(ok, "helm install failed:\n{out}");
    assert!(out.contains("kubectl get vpa my-app"), "NOTES: {out}");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    for c in ["recommender", "updater", "admission-controller"] {
        deployments
            .get(&format!("{full}-{c}"))
            .await
            .with_context(|| format!("{c} Deployment"))?;
        Api::<ServiceAccount>::namespaced(client.clone(), ns.name())
            .get(&format!("{full}-{c}"))
            .await?;
    }

    // RBAC: what each component needs, and nothing more.
    let n = ns.name();
    let (rec, upd, adm) = (
        format!("{full}-recommender"),
        format!("{full}-updater"),
        format!("{full}-admission-controller"),
    );
    let other = Some("default");
    let checks = vec![
        access(&rec, "list", "", "pods", "", other, true),
        access(
            &rec,
            "patch",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "status",
            other,
            true,
        ),
        access(
            &rec,
            "create",
            "autoscaling.k8s.io",
            "verticalpodautoscalercheckpoints",
            "",
            other,
            true,
        ),
        access(
            &rec,
            "delete",
            "autoscaling.k8s.io",
            "verticalpodautoscalercheckpoints",
            "",
            other,
            true,
        ),
        access(&rec, "list", "metrics.k8s.io", "pods", "", other, true),
        access(&rec, "get", "apps", "deployments", "scale", other, true),
        access(
            &rec,
            "update",
            "coordination.k8s.io",
            "leases#vpa-recommender-lease",
            "",
            Some(n),
            true,
        ),
        access(
            &rec,
            "update",
            "coordination.k8s.io",
            "leases#vpa-updater",
            "",
            Some(n),
            false,
        ),
        access(&rec, "create", "", "pods", "", other, false),
        access(&rec, "patch", "", "pods", "", other, false),
        access(&rec, "delete", "", "pods", "", other, false),
        access(
            &rec,
            "update",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "",
            other,
            false,
        ),
        access(&rec, "get", "", "secrets", "", other, false),
        access(&upd, "create", "", "pods", "eviction", other, true),
        access(&upd, "patch", "", "pods", "resize", other, true),
        access(&upd, "create", "", "events", "", other, true),
        access(
            &upd,
            "get",
            "coordination.k8s.io",
            "leases#vpa-admission-controller",
            "",
            Some(n),
            true,
        ),
        access(
            &upd,
            "update",
            "coordination.k8s.io",
            "leases#vpa-admission-controller",
            "",
            Some(n),
            false,
        ),
        access(&upd, "delete", "", "pods", "", other, false),
        access(&upd, "update", "", "pods", "", other, false),
        access(
            &upd,
            "patch",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "status",
            other,
            false,
        ),
        access(&upd, "get", "", "secrets", "", other, false),
        access(
            &adm,
            "watch",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "",
            other,
            true,
        ),
        access(&adm, "list", "", "limitranges", "", other, true),
        access(&adm, "list", "apps", "replicasets", "", other, true),
        access(
            &adm,
            "update",
            "coordination.k8s.io",
            "leases#vpa-admission-controller",
            "",
            Some(n),
            true,
        ),
        access(
            &adm,
            "create",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "",
            other,
            false,
        ),
        access(
            &adm,
            "patch",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "",
            other,
            false,
        ),
        access(
            &adm,
            "patch",
            "autoscaling.k8s.io",
            "verticalpodautoscalers",
            "status",
            other,
            false,
        ),
        access(&adm, "create", "", "pods", "", other, false),
        access(
            &adm,
            "patch",
            "admissionregistration.k8s.io",
            "mutatingwebhookconfigurations",
            "",
            None,
            false,
        ),
        access(&adm, "get", "", "secrets", "", other, false),
    ];
    let mut wrong = Vec::new();
    for a in &checks {
        let got = can(&client, n, a).await?;
        if got != a.want {
            wrong.push(format!(
                "{} {} {}/{}/{} in {:?}: allowed={got}, want {}",
                a.sa, a.verb, a.group, a.resource, a.sub, a.ns, a.want
            ));
        }
    }

    assert!(wrong.is_empty(), "RBAC:\n{}", wrong.join("\n"));

    // The recommender runs with its own ServiceAccount's token and writes a recommendation.
    let sa_kubeconfig = token_kubeconfig(&client, n, &rec, dir.path()).await?;
    let app_ns = TestNamespace::create(&client, "chart-app").await?;
    Api::<Deployment>::namespaced(client.clone(), app_ns.name())
        .create(&PostParams::default(), &deployment("web", 1)?)
        .await?;
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), app_ns.name());
    vpas.create(&PostParams::default(), &vpa("web", "Deployment", "web")?)
        .await?;
    let metrics = Arc::new(FakeMetricsServer::start().await?);
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), app_ns.name());
    let pod = wait_for("the app's pod", Duration::from_secs(60), async || {
        Ok(pods
            .list(&Default::default())
            .await?
            .items
            .into_iter()
            .next())
    })
    .await?;
    metrics.set_pod(
        app_ns.name(),
        &pod.metadata.name.clone().unwrap_or_default(),
        &[("app", "300m", "200Mi")],
    );
    let ca_file = dir.path().join("metrics-ca.pem");
    std::fs::write(&ca_file, metrics.ca_pem())?;
    let token_file = dir.path().join("metrics-token");
    std::fs::write(&token_file, metrics.token())?;
    let mut process = RecommenderProcess::start(
        dir.path(),
        "chart-rbac",
        Some(&sa_kubeconfig),
        &[
            format!("--vpa-object-namespace={}", app_ns.name()),
            format!("--metrics-url={}", metrics.base_url()),
            format!("--metrics-ca-file={}", ca_file.display()),
            format!("--metrics-token-file={}", token_file.display()),
            "--leader-elect=true".into(),
            format!("--leader-elect-resource-namespace={n}"),
        ],
    )?;
    let got = wait_for(
        "a recommendation written with the chart's RBAC",
        Duration::from_secs(90),
        async || {
            let v = vpas.get("web").await?;
            Ok(has_recommendation(&v).then_some(v))
        },
    )
    .await;
    if let Err(e) = got {
        bail!("{e}\n{}", process.describe());
    }
    drop(process);

    // The admission controller with its token: its index syncs (watches and target reads
    // allowed) and it keeps its status Lease in the release namespace.
    let adm_kubeconfig = token_kubeconfig(&client, n, &adm, dir.path()).await?;
    let hook = Webhook::start_as(
        &client,
        dir.path(),
        app_ns.name(),
        Some(&adm_kubeconfig),
        &[
            "--register-webhook=false".into(),
            format!("--status-lease-namespace={n}"),
        ],
    )?;
    hook.wait_ready().await?;
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::namespaced(client.clone(), n);
    wait_for(
        "the admission status Lease",
        Duration::from_secs(30),
        async || Ok(leases.get_opt("vpa-admission-controller").await?),
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n{}", hook.logs()))?;

    // The updater with its token evicts a pod far from its recommendation (the admission
    // Lease above is fresh).
    let far = json!({"containerRecommendations": [{"containerName": "app",
        "target": {"cpu": "800m", "memory": "500Mi"}, "lowerBound": {"cpu": "700m", "memory": "400Mi"},
        "upperBound": {"cpu": "900m", "memory": "600Mi"}, "uncappedTarget": {"cpu": "800m", "memory": "500Mi"}}]});
    vpas.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"recommendation": far}})),
    )
    .await?;
    vpas.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"updatePolicy": {"updateMode": "Recreate"}}})),
    )
    .await?;
    let before = pod.metadata.uid.clone();
    let upd_kubeconfig = token_kubeconfig(&client, n, &upd, dir.path()).await?;
    let updater = Updater::start_with(
        dir.path(),
        app_ns.name(),
        Some(&upd_kubeconfig),
        n,
        &["--min-replicas=1", "--updater-interval=2s"],
    )?;
    wait_for(
        "an eviction by the updater with the chart's RBAC",
        Duration::from_secs(60),
        async || {
            let items = pods.list(&Default::default()).await?.items;
            Ok(items.iter().any(|p| p.metadata.uid != before).then_some(()))
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n--- updater log ---\n{}", updater.logs()))?;
    assert!(
        updater.metric("vpa_updater_evicted_pods_total") >= 1.0,
        "{}",
        updater.metrics()
    );
    drop(updater);
    hook.cleanup().await?;
    app_ns.delete(&client).await?;

    // Upgrade: a changed value reaches the Deployment.
    let (ok, out) = helm(&[
        "upgrade",
        &release,
        chart.to_str().unwrap(),
        "--namespace",
        n,
        "--kubeconfig",
        &kubeconfig,
        "-f",
        values.to_str().unwrap(),
        "--set",
        "updater.evictionRateLimit=3",
    ])?;
    ensure!(ok, "helm upgrade failed:\n{out}");
    let d = deployments.get(&upd).await?;
    let args = d.spec.unwrap().template.spec.unwrap().containers[0]
        .args
        .clone()
        .unwrap_or_default();
    assert!(
        args.contains(&"--eviction-rate-limit=3".to_string()),
        "{args:?}"
    );

    // Uninstall removes the cluster-scoped objects too.
    let (ok, out) = helm(&[
        "uninstall",
        &release,
        "--namespace",
        n,
        "--kubeconfig",
        &kubeconfig,
        "--wait",
    ])?;
    ensure!(ok, "helm uninstall failed:\n{out}");
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    assert!(
        roles.get_opt(&rec).await?.is_none(),
        "ClusterRole left behind"
    );
    let mwcs: Api<k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration> =
        Api::all(client.clone());
    assert!(
        mwcs.get_opt(&format!("{full}-webhook-config"))
            .await?
            .is_none()
    );
    ns.delete(&client).await
}
