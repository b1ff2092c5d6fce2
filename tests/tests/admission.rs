//! End-to-end tests of `vpa-admission` against the local control plane: the binary runs as a
//! child process on 127.0.0.1, registers its MutatingWebhookConfiguration by URL (one per
//! test, scoped to the test's namespace), and the real API server calls it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use vpa_core::api::vpa::VerticalPodAutoscaler;
use vpa_e2e::admission::Webhook;
use vpa_e2e::recommender::deployment;
use vpa_e2e::{TestNamespace, cluster, wait_for};

const WAIT: Duration = Duration::from_secs(60);

/// A VPA for Deployment `web` in `mode`, with a recommendation for container `app`.
async fn vpa_with_recommendation(
    client: &Client,
    ns: &str,
    mode: &str,
    cpu: &str,
    memory: &str,
) -> anyhow::Result<()> {
    let vpas: Api<VerticalPodAutoscaler> = Api::namespaced(client.clone(), ns);
    let v: VerticalPodAutoscaler = serde_json::from_value(json!({
        "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
        "metadata": {"name": "web"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "updatePolicy": {"updateMode": mode}}
    }))?;
    vpas.create(&PostParams::default(), &v).await?;
    let rec = json!({"containerRecommendations": [{"containerName": "app",
        "target": {"cpu": cpu, "memory": memory},
        "lowerBound": {"cpu": cpu, "memory": memory},
        "upperBound": {"cpu": cpu, "memory": memory},
        "uncappedTarget": {"cpu": cpu, "memory": memory}}]});
    vpas.patch_status(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"recommendation": rec}})),
    )
    .await?;
    Ok(())
}

/// A pod as the ReplicaSet of Deployment `web` would create it (requests 100m/100Mi).
fn replica_pod(hash: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"generateName": format!("web-{hash}-"),
            "labels": {"app": "web", "pod-template-hash": hash},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("web-{hash}"),
                "uid": "00000000-0000-0000-0000-000000000001", "controller": true}]},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
            "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}}}]}
    }))
    .unwrap()
}

fn requests(p: &Pod) -> (String, String) {
    let r = p.spec.as_ref().unwrap().containers[0]
        .resources
        .as_ref()
        .and_then(|r| r.requests.clone())
        .unwrap_or_default();
    (
        r.get("cpu").map(|q| q.0.clone()).unwrap_or_default(),
        r.get("memory").map(|q| q.0.clone()).unwrap_or_default(),
    )
}

/// Creates `pod` with dryRun=All and returns what the API server would store.
async fn dry_run(pods: &Api<Pod>, pod: &Pod) -> anyhow::Result<Pod> {
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    Ok(pods.create(&pp, pod).await?)
}

/// Waits until the API server calls the webhook: a dry-run pod comes back mutated.
async fn wait_mutating(pods: &Api<Pod>, hook: &Webhook, want: (&str, &str)) -> anyhow::Result<()> {
    let probe = replica_pod("probe1");
    let r = wait_for("the API server to call the webhook", WAIT, async || {
        let p = dry_run(pods, &probe).await?;
        Ok((requests(&p) == (want.0.to_string(), want.1.to_string())).then_some(()))
    })
    .await;
    r.map_err(|e| anyhow::anyhow!("{e}\n--- webhook log ---\n{}", hook.logs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_pods_get_the_recommendation_and_pods_are_created_without_the_webhook()
-> anyhow::Result<()> {
    let Some(client) = cluster("admission_deployment").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "admission").await?;
    let dir = tempfile::tempdir()?;
    vpa_with_recommendation(&client, ns.name(), "Initial", "250m", "300Mi").await?;
    // The VPA's selector comes from its target: the Deployment exists, with no replicas yet.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns.name());
    deployments
        .create(&PostParams::default(), &deployment("web", 0)?)
        .await?;
    let mut hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    wait_mutating(&pods, &hook, ("250m", "300Mi")).await?;

    // Scale up: the ReplicaSet controller creates the pod, the API server calls us.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await?;
    let pod = wait_for("the Deployment's pod", WAIT, async || {
        Ok(pods
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .next())
    })
    .await?;
    assert_eq!(
        requests(&pod),
        ("250m".into(), "300Mi".into()),
        "{}",
        hook.logs()
    );
    let ann = pod.annotations();
    assert!(
        ann.get("vpaUpdates")
            .is_some_and(|u| u.contains("cpu request") && u.contains("memory request")),
        "{ann:?}"
    );
    assert_eq!(
        ann.get("vpaObservedContainers").map(String::as_str),
        Some("app")
    );
    assert!(
        http_get_metrics(hook.admin).contains("vpa_admission_controller_admission_latency_seconds"),
        "metrics"
    );

    // The status Lease is kept fresh for the updater.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
        Api::namespaced(client.clone(), ns.name());
    let lease = leases.get("vpa-admission-controller").await?;
    assert!(lease.spec.and_then(|s| s.renew_time).is_some());

    // Webhook stopped: pods are still created (failurePolicy Ignore), unchanged.
    hook.kill();
    let created = pods
        .create(&PostParams::default(), &replica_pod("nohook1"))
        .await
        .context("a pod must be created while the webhook is down")?;
    assert_eq!(requests(&created), ("100m".into(), "100Mi".into()));
    hook.cleanup().await?;
    ns.delete(&client).await
}

fn http_get_metrics(port: u16) -> String {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    let _ = write!(s, "GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_vpa_is_rejected_by_the_api_server_with_upstreams_message() -> anyhow::Result<()>
{
    let Some(client) = cluster("admission_invalid_vpa").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "admission-invalid").await?;
    let dir = tempfile::tempdir()?;
    let hook = Webhook::start(&client, dir.path(), ns.name(), &[])?;
    hook.wait_ready().await?;
    let ar = kube::api::ApiResource::erase::<VerticalPodAutoscaler>(&());
    let vpas: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns.name(), &ar);
    let bad = |name: &str, spec: serde_json::Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "autoscaling.k8s.io/v1", "kind": "VerticalPodAutoscaler",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    };
    let target = json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"});
    // Until the API server has picked up the configuration, VPAs are not validated: retry.
    let err = wait_for("the VPA to be rejected by the webhook", WAIT, async || {
        let v = bad(
            "bad-minmax",
            json!({"targetRef": target,
            "resourcePolicy": {"containerPolicies": [{"containerName": "app",
                "minAllowed": {"cpu": "100m"}, "maxAllowed": {"cpu": "10m"}}]}}),
        );
        match vpas.create(&PostParams::default(), &v).await {
            Ok(_) => {
                vpas.delete("bad-minmax", &DeleteParams::default()).await?;
                Ok(None)
            }
            Err(kube::Error::Api(s)) => Ok(Some(s)),
            Err(e) => Err(e.into()),
        }
    })
    .await
    .map_err(|e| anyhow::anyhow!("{e}\n--- webhook log ---\n{}", hook.logs()))?;
    assert_eq!(err.code, 422, "{err:?}");
    assert!(
        err.message.contains(
            "spec.resourcePolicy.containerPolicies[0].maxAllowed[cpu]: Invalid value: \"10m\": max resource for cpu is lower than min of \"100m\""
        ),
        "{}",
        err.message
    );
    assert!(
        err.message
            .contains("admission webhook \"vpa.k8s.io\" denied the request"),
        "{}",
        err.message
    );

    // An update mode the typed API cannot hold gets upstream's "Unsupported value".
    let v = bad(
        "bad-mode",
        json!({"targetRef": target, "updatePolicy": {"updateMode": "Sometimes"}}),
    );
    let e = vpas.create(&PostParams::default(), &v).await.unwrap_err();
    let kube::Error::Api(s) = e else {
        bail!("expected an API error, got {e}")
    };
    assert!(
        s.message.contains(
            "spec.updatePolicy.updateMode: Unsupported value: \"Sometimes\": supported values: \"InPlace\", \"InPlaceOrRecreate\", \"Initial\", \"Off\", \"Recreate\""
        ),
        "{}",
        s.message
    );

    // A valid VPA without updatePolicy is defaulted to Recreate.
    let ok = vpas
        .create(
            &PostParams::default(),
            &bad("fine", json!({"targetRef": target})),
        )
        .await?;
    assert_eq!(ok.data["spec"]["updatePolicy"]["updateMode"], "Recreate");
    hook.cleanup().await?;
    ns.delete(&client).await
}

/// A CA and a serving certificate for 127.0.0.1 signed by it, as PEM (ca, cert, key).
fn ca_and_cert(name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name} CA"));
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names
        .push(SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])));
    leaf.distinguished_name.push(DnType::CommonName, name);
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Writes `content` to `path` atomically (rename), as a Secret volume update appears.
fn replace(path: &Path, content: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The CN of the certificate the server on `port` presents (no verification).
async fn served_cn(port: u16) -> anyhow::Result<String> {
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    #[derive(Debug)]
    struct Any(Arc<rustls::crypto::CryptoProvider>);
    impl ServerCertVerifier for Any {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Any(provider)))
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1")?.to_owned(), tcp)
        .await?;
    let der = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .context("no peer certificate")?
        .to_vec();
    // The CN is the only CN-tagged printable string in these small certificates.
    let text = String::from_utf8_lossy(&der).to_string();
    Ok(if text.contains("serving-two") {
        "serving-two"
    } else if text.contains("serving-one") {
        "serving-one"
    } else {
        "?"
    }
    .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_certificate_is_served_without_restart_and_without_failed_requests()
-> anyhow::Result<()> {
    let Some(client) = cluster("admission_cert_rotation").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "admission-certs").await?;
    let dir = tempfile::tempdir()?;
    let (ca1, cert1, key1) = ca_and_cert("serving-one");
    let (ca2, cert2, key2) = ca_and_cert("serving-two");
    let (ca, cert, key) = (
        dir.path().join("caCert.pem"),
        dir.path().join("serverCert.pem"),
        dir.path().join("serverKey.pem"),
    );
    std::fs::write(&ca, &ca1)?;
    std::fs::write(&cert, &cert1)?;
    std::fs::write(&key, &key1)?;
    vpa_with_recommendation(&client, ns.name(), "Recreate", "300m", "200Mi").await?;
    Api::<Deployment>::namespaced(client.clone(), ns.name())
        .create(&PostParams::default(), &deployment("web", 0)?)
        .await?;
    let hook = Webhook::start(
        &client,
        dir.path(),
        ns.name(),
        &[
            format!("--tls-cert-file={}", cert.display()),
            format!("--tls-private-key={}", key.display()),
            format!("--client-ca-file={}", ca.display()),
            "--tls-reload-interval=1s".into(),
        ],
    )?;
    hook.wait_ready().await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns.name());
    wait_mutating(&pods, &hook, ("300m", "200Mi")).await?;
    assert_eq!(served_cn(hook.port).await?, "serving-one");

    // Requests keep flowing through the API server during the rotation; each must be mutated.
    let (sent, unmutated) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let (pods, sent, unmutated, stop) =
            (pods.clone(), sent.clone(), unmutated.clone(), stop.clone());
        tokio::spawn(async move {
            let probe = replica_pod("rotate1");
            while !stop.load(Ordering::Relaxed) {
                match dry_run(&pods, &probe).await {
                    Ok(p) if requests(&p) == ("300m".into(), "200Mi".into()) => {}
                    _ => {
                        unmutated.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    // First the bundle with both CAs (the webhook re-registers it), then the new certificate.
    replace(&ca, &format!("{ca1}{ca2}"))?;
    let mwcs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    wait_for("the caBundle with both CAs", WAIT, async || {
        let m = mwcs.get(&hook.config_name).await?;
        let bundle = m.webhooks.unwrap_or_default()[0]
            .client_config
            .ca_bundle
            .clone()
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .unwrap_or_default();
        Ok((bundle.contains(ca2.trim()) && bundle.contains(ca1.trim())).then_some(()))
    })
    .await?;
    // The API server's webhook informer lags the object a little.
    tokio::time::sleep(Duration::from_secs(3)).await;
    replace(&key, &key2)?;
    replace(&cert, &cert2)?;
    wait_for("the new certificate to be served", WAIT, async || {
        Ok((served_cn(hook.port).await? == "serving-two").then_some(()))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    load.await?;
    let (sent, unmutated) = (
        sent.load(Ordering::Relaxed),
        unmutated.load(Ordering::Relaxed),
    );
    assert!(sent >= 20, "only {sent} requests during the rotation");
    assert_eq!(
        unmutated,
        0,
        "{unmutated} of {sent} pods not mutated during the rotation\n{}",
        hook.logs()
    );
    hook.cleanup().await?;
    ns.delete(&client).await
}
