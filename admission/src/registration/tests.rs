#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use clap::Parser as _;
use serde_json::{Value, json};

use super::*;
use crate::config::Config;

fn config(args: &[&str]) -> Config {
    Config::try_parse_from(
        ["vpa-admission", "--namespace=vpa-system"]
            .iter()
            .chain(args.iter())
            .copied(),
    )
    .unwrap()
}

fn object(args: &[&str], ca: &[u8]) -> Value {
    let settings = WebhookSettings::from_config(&config(args)).unwrap();
    serde_json::to_value(webhook_configuration(&settings, ca)).unwrap()
}

#[test]
fn defaults_register_by_service_with_upstreams_rules() {
    let o = object(&[], b"PEM");
    assert_eq!(o["apiVersion"], "admissionregistration.k8s.io/v1");
    assert_eq!(o["kind"], "MutatingWebhookConfiguration");
    assert_eq!(o["metadata"], json!({"name": "vpa-webhook-config"}));
    let hooks = o["webhooks"].as_array().unwrap();
    assert_eq!(hooks.len(), 1);
    assert_eq!(
        hooks[0],
        json!({
            "name": "vpa.k8s.io",
            "admissionReviewVersions": ["v1"],
            "clientConfig": {
                "caBundle": "UEVN",
                "service": {"namespace": "vpa-system", "name": "vpa-webhook"}
            },
            "failurePolicy": "Ignore",
            "namespaceSelector": {"matchExpressions": [
                {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["vpa-system"]}
            ]},
            "reinvocationPolicy": "Never",
            "rules": [
                {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"]},
                {"apiGroups": ["autoscaling.k8s.io"], "apiVersions": ["*"],
                 "operations": ["CREATE", "UPDATE"], "resources": ["verticalpodautoscalers"]}
            ],
            "sideEffects": "None",
            "timeoutSeconds": 5
        })
    );
}

#[test]
fn flags_shape_the_webhook() {
    let o = object(
        &[
            "--webhook-failure-policy-fail",
            "--webhook-timeout-seconds=30",
            "--webhook-reinvocation-policy=IfNeeded",
            "--webhook-labels=team:vpa,tier:platform",
            "--webhook-object-selector=vpa.k8s.io/ignore!=true,env in (prod,staging),app",
        ],
        b"",
    );
    let h = &o["webhooks"][0];
    assert_eq!(h["failurePolicy"], "Fail");
    assert_eq!(h["timeoutSeconds"], 30);
    assert_eq!(h["reinvocationPolicy"], "IfNeeded");
    assert!(h["clientConfig"].get("caBundle").is_none());
    assert_eq!(
        o["metadata"]["labels"],
        json!({"team": "vpa", "tier": "platform"})
    );
    assert_eq!(
        h["objectSelector"],
        json!({"matchExpressions": [
            {"key": "app", "operator": "Exists"},
            {"key": "env", "operator": "In", "values": ["prod", "staging"]},
            {"key": "vpa.k8s.io/ignore", "operator": "NotIn", "values": ["true"]},
        ]})
    );
    let o = object(&["--webhook-object-selector=team=a"], b"");
    assert_eq!(
        o["webhooks"][0]["objectSelector"],
        json!({"matchLabels": {"team": "a"}})
    );
}

#[test]
fn namespace_selector_excludes_own_and_ignored_or_includes_only_one() {
    let sel = |args: &[&str]| object(args, b"")["webhooks"][0]["namespaceSelector"].clone();
    assert_eq!(
        sel(&["--ignored-vpa-object-namespaces=kube-public,vpa-system, batch"]),
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                     "values": ["vpa-system", "kube-public", "batch"]}]})
    );
    assert_eq!(
        sel(&["--vpa-object-namespace=shop"]),
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                     "values": ["shop"]}]})
    );
    assert_eq!(sel(&["--webhook-exclude-own-namespace=false"]), Value::Null);
    assert_eq!(
        sel(&[
            "--webhook-exclude-own-namespace=false",
            "--ignored-vpa-object-namespaces=a"
        ]),
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                     "values": ["a"]}]})
    );
}

#[test]
fn register_by_url_uses_address_and_port_literally() {
    let o = object(
        &[
            "--register-by-url",
            "--webhook-address=https://vpa.example.com",
            "--webhook-port=8443",
        ],
        b"CA",
    );
    assert_eq!(
        o["webhooks"][0]["clientConfig"],
        json!({"caBundle": "Q0E=", "url": "https://vpa.example.com:8443"})
    );
    let o = object(
        &[
            "--register-by-url",
            "--webhook-address=https://vpa.example.com/hook",
        ],
        b"",
    );
    assert_eq!(
        o["webhooks"][0]["clientConfig"],
        json!({"url": "https://vpa.example.com/hook"})
    );
    let c = config(&["--register-by-url"]);
    assert_eq!(
        WebhookSettings::from_config(&c),
        Err(ConfigError::MissingAddress)
    );
}

// ---- against a fake API server ----

/// One request: method, URI, content type, JSON body.
type Call = (String, String, String, Value);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Call>>>);

async fn fake_api(seen: Seen) -> kube::Client {
    use axum::extract::{OriginalUri, State};
    use axum::http::{HeaderMap, Method};
    let app = axum::Router::new()
        .fallback(
            |State(seen): State<Seen>,
             method: Method,
             OriginalUri(uri): OriginalUri,
             headers: HeaderMap,
             body: axum::body::Bytes| async move {
                let ct = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.0.lock().unwrap().push((
                    method.to_string(),
                    uri.to_string(),
                    ct,
                    json.clone(),
                ));
                axum::Json(json)
            },
        )
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let config = kube::Config::new(format!("http://{addr}").parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn apply_is_one_forced_server_side_apply_and_follows_the_ca() {
    let seen = Seen::default();
    let client = fake_api(seen.clone()).await;
    let metrics = Arc::new(AdmissionMetrics::unregistered());
    let settings = WebhookSettings::from_config(&config(&[])).unwrap();
    let registrar = Registrar::new(client, settings, metrics);
    assert!(registrar.register(b"CA1", std::future::pending()).await);
    let (tx, rx) = watch::channel(b"CA1".to_vec());
    let stop = vpa_core::runtime::shutdown::Shutdown::new();
    let task = tokio::spawn(registrar.follow(rx, stop.clone().cancelled_owned()));
    tx.send_replace(b"CA2".to_vec());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while seen.0.lock().unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no re-apply");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    stop.trigger("test");
    task.await.unwrap();
    let seen = seen.0.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for (method, uri, ct, _) in seen.iter() {
        assert_eq!(method, "PATCH");
        assert_eq!(
            uri,
            "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/vpa-webhook-config?&force=true&fieldManager=vpa-admission"
        );
        assert_eq!(ct, "application/apply-patch+yaml");
    }
    assert_eq!(seen[0].3["webhooks"][0]["clientConfig"]["caBundle"], "Q0Ex");
    assert_eq!(seen[1].3["webhooks"][0]["clientConfig"]["caBundle"], "Q0Ey");
    assert_eq!(seen[1].3["kind"], "MutatingWebhookConfiguration");
}
