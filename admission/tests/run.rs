//! `run` wired end to end against a fake API server: readiness (`tls serving` plus a hook's
//! own condition), self-registration with the generated CA, the status Lease, a pod review
//! over HTTPS trusting the registered caBundle, and a clean shutdown.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{OriginalUri, State};
use axum::http::{Method, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use bytes::Bytes;
use clap::Parser as _;
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionRequest;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use vpa_admission::config::Config;
use vpa_admission::hooks::{Hooks, Mutation, MutationError, PodMutator};
use vpa_core::runtime::shutdown::Shutdown;

#[derive(Default)]
struct Api {
    calls: Vec<(String, String)>,
    webhook: Option<Value>,
    lease: Option<Value>,
}

type Shared = Arc<Mutex<Api>>;

async fn fake(
    State(api): State<Shared>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    body: Bytes,
) -> axum::response::Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut api = api.lock().unwrap();
    api.calls.push((method.to_string(), uri.path().to_string()));
    let not_found = || {
        (
            StatusCode::NOT_FOUND,
            axum::Json(
                json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                              "reason": "NotFound", "code": 404, "message": "not found"}),
            ),
        )
            .into_response()
    };
    let path = uri.path();
    if path.starts_with("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/") {
        api.webhook = Some(body.clone());
        return axum::Json(body).into_response();
    }
    if path.starts_with("/apis/coordination.k8s.io/v1/namespaces/vpa-system/leases") {
        return match method {
            Method::GET => match &api.lease {
                Some(l) => axum::Json(l.clone()).into_response(),
                None => not_found(),
            },
            _ => {
                let mut l = body;
                l["metadata"]["resourceVersion"] = json!("1");
                api.lease = Some(l.clone());
                (StatusCode::CREATED, axum::Json(l)).into_response()
            }
        };
    }
    not_found()
}

struct Limits;

impl PodMutator for Limits {
    fn mutate(&self, req: &AdmissionRequest<Pod>) -> Result<Mutation, MutationError> {
        let ns = req.namespace.clone().unwrap_or_default();
        Ok(Mutation::with_patch(vec![PatchOperation::Add(
            AddOperation {
                path: PointerBuf::from_tokens(["metadata", "annotations"]),
                value: json!({"seen-in": ns}),
            },
        )]))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_registers_serves_renews_and_shuts_down() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api: Shared = Arc::default();
    let app = axum::Router::new().fallback(fake).with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = std::env::temp_dir().join(format!("vpa-admission-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: t\n\
             clusters: [{{name: t, cluster: {{server: 'http://{api_addr}'}}}}]\n\
             contexts: [{{name: t, context: {{cluster: t, user: t}}}}]\n\
             users: [{{name: t, user: {{}}}}]\n"
        ),
    )
    .unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let config = Config::try_parse_from([
        "vpa-admission".to_string(),
        format!("--kubeconfig={}", kubeconfig.display()),
        "--namespace=vpa-system".into(),
        format!("--port={port}"),
        format!("--address=127.0.0.1:{admin_port}"),
        "--tls-cert-file=".into(),
        "--tls-private-key=".into(),
        "--client-ca-file=".into(),
        "--status-lease-update-interval=1s".into(),
    ])
    .unwrap();
    let shutdown = Shutdown::new();
    let synced = Shutdown::new();
    let run = {
        let shutdown = shutdown.clone();
        let synced = synced.clone();
        tokio::spawn(vpa_admission::run::run(config, shutdown, move |ctx| {
            ctx.health.require("stores synced");
            let health = ctx.health.clone();
            tokio::spawn(async move {
                synced.cancelled().await;
                health.set_ready("stores synced", true);
            });
            Ok(Hooks {
                pods: Some(Arc::new(Limits)),
                vpas: None,
            })
        }))
    };
    let admin: SocketAddr = ([127, 0, 0, 1], admin_port).into();
    wait_for("admin server", async || {
        get(admin, "/healthz").await.0 == 200
    })
    .await;
    let (status, body) = get(admin, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("stores synced"), "{body}");
    synced.trigger("synced");
    wait_for("readiness", async || get(admin, "/readyz").await.0 == 200).await;

    // Registered with the generated CA, and the lease is renewed.
    wait_for("registration and lease", async || {
        let a = api.lock().unwrap();
        a.webhook.is_some() && a.lease.is_some()
    })
    .await;
    let (webhook, lease) = {
        let a = api.lock().unwrap();
        (a.webhook.clone().unwrap(), a.lease.clone().unwrap())
    };
    assert_eq!(webhook["metadata"]["name"], "vpa-webhook-config");
    assert_eq!(
        webhook["webhooks"][0]["clientConfig"]["service"],
        json!({"namespace": "vpa-system", "name": "vpa-webhook"})
    );
    assert_eq!(lease["metadata"]["name"], "vpa-admission-controller");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 1);
    wait_for("a lease renewal", async || {
        api.lock()
            .unwrap()
            .calls
            .iter()
            .any(|(m, p)| m == "PUT" && p.ends_with("/leases/vpa-admission-controller"))
    })
    .await;

    // A pod review over HTTPS, trusting only the registered caBundle.
    let ca = base64::engine::general_purpose::STANDARD
        .decode(
            webhook["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(&ca).unwrap())
        .unwrap();
    let mut tls = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(tls))
        .connect(
            ServerName::try_from("vpa-webhook.vpa-system.svc").unwrap(),
            tcp,
        )
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let review = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/data/admission/pod-create.json"),
    )
    .unwrap();
    let req = http::Request::post("/mutate")
        .header("host", "vpa-webhook.vpa-system.svc")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(review)))
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(body["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    assert_eq!(patch[0]["value"], json!({"seen-in": "shop"}));

    let (_, metrics) = get(admin, "/metrics").await;
    assert!(
        metrics.contains("vpa_admission_controller_admission_pods_total{applied=\"true\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("vpa_admission_controller_webhook_registrations_total{result=\"success\"} 1")
    );

    shutdown.trigger("test");
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
