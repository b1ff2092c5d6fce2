//! The fake metrics-server (`vpa_e2e::metrics_server`): the resource metrics API read with
//! vpa-core's `PodMetrics` type, directly and through the real API server's aggregation layer,
//! and how outages look to a kube client on both paths. The direct tests need no control plane;
//! the aggregated ones do (run with `scripts/test`). Error texts are printed (`--nocapture`)
//! because the recommender's messages are built on them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use anyhow::Context as _;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::Discovery;
use vpa_core::api::metrics::PodMetrics;
use vpa_e2e::metrics_server::{FakeMetricsServer, Mode, PodOptions};
use vpa_e2e::{api_code, client_without_retry, cluster, install_crypto, wait_for};

const WAIT: Duration = Duration::from_secs(90);

fn names(list: &[PodMetrics]) -> Vec<String> {
    let mut v: Vec<String> = list
        .iter()
        .map(|p| {
            format!(
                "{}/{}",
                p.metadata.namespace.as_deref().unwrap_or_default(),
                p.metadata.name.as_deref().unwrap_or_default()
            )
        })
        .collect();
    v.sort();
    v
}

fn q(s: &str) -> Quantity {
    Quantity(s.to_owned())
}

fn fill(server: &FakeMetricsServer) {
    let labels = [("app".to_owned(), "hamster".to_owned())]
        .into_iter()
        .collect();
    server.set_pod_with(
        "ns-a",
        "hamster-1",
        PodOptions {
            labels,
            ..PodOptions::default()
        },
        &[("hamster", "250m", "300Mi"), ("sidecar", "5m", "20Mi")],
    );
    server.set_pod("ns-a", "other-1", &[("app", "1", "1Gi")]);
    server.set_pod("ns-b", "b-1", &[("app", "100m", "64Mi")]);
}

#[tokio::test]
async fn direct_lists_all_one_namespace_and_one_pod() {
    install_crypto();
    let server = FakeMetricsServer::start().await.unwrap();
    assert!(server.base_url().starts_with("https://127.0.0.1:"));
    assert!(server.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    fill(&server);
    let client = server.direct_client().unwrap();

    let all: Api<PodMetrics> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&list.items),
        ["ns-a/hamster-1", "ns-a/other-1", "ns-b/b-1"]
    );

    let ns_a: Api<PodMetrics> = Api::namespaced(client.clone(), "ns-a");
    let list = ns_a.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), ["ns-a/hamster-1", "ns-a/other-1"]);
    let selected = ns_a
        .list(&ListParams::default().labels("app=hamster"))
        .await
        .unwrap();
    assert_eq!(names(&selected.items), ["ns-a/hamster-1"]);

    let pod = ns_a.get("hamster-1").await.unwrap();
    assert_eq!(pod.window_duration(), Some(Duration::from_secs(60)));
    assert!(pod.timestamp.is_some());
    assert!(pod.metadata.creation_timestamp.is_some());
    assert_eq!(
        pod.metadata
            .labels
            .as_ref()
            .unwrap()
            .get("app")
            .map(String::as_str),
        Some("hamster")
    );
    let c = pod.container("hamster").unwrap();
    assert_eq!(c.cpu(), Some(&q("250m")));
    assert_eq!(c.memory(), Some(&q("300Mi")));
    assert_eq!(pod.container("sidecar").unwrap().memory(), Some(&q("20Mi")));

    let missing = ns_a.get("nope").await.unwrap_err();
    assert_eq!(api_code(&missing), Some(404));
    eprintln!("direct get of a missing pod: {missing}");

    server.remove_pod("ns-a", "other-1");
    let list = ns_a.list(&ListParams::default()).await.unwrap();
    assert_eq!(names(&list.items), ["ns-a/hamster-1"]);

    // Discovery documents and the (empty) node list.
    let resources = client
        .list_api_group_resources("metrics.k8s.io/v1beta1")
        .await
        .unwrap();
    let mut plurals: Vec<&str> = resources
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    plurals.sort_unstable();
    assert_eq!(plurals, ["nodes", "pods"]);
    assert!(
        resources
            .resources
            .iter()
            .all(|r| r.verbs == ["get", "list"])
    );
    let err = client.list_api_groups().await.unwrap_err();
    assert_eq!(api_code(&err), Some(404), "/apis must be 404: {err}");
    let nodes_ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("metrics.k8s.io", "v1beta1", "NodeMetrics"),
        "nodes",
    );
    let nodes: Api<DynamicObject> = Api::all_with(client.clone(), &nodes_ar);
    assert!(
        nodes
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(server.request_count() >= 9, "{}", server.request_count());
}

#[tokio::test]
async fn direct_requests_without_the_token_get_401() {
    install_crypto();
    let server = FakeMetricsServer::start().await.unwrap();
    fill(&server);
    for token in [None, Some("wrong")] {
        let mut config = server.direct_config().unwrap();
        config.auth_info.token = token.map(|t| t.to_owned().into());
        let client = kube::Client::try_from(config).unwrap();
        let err = Api::<PodMetrics>::all(client)
            .list(&ListParams::default())
            .await
            .unwrap_err();
        assert_eq!(api_code(&err), Some(401), "{err}");
        eprintln!("direct, token {token:?}: {err}");
    }
    // The right token still works.
    let list = Api::<PodMetrics>::all(server.direct_client().unwrap())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 3);
}

#[tokio::test]
async fn direct_unavailable_and_error_modes_surface_as_api_errors() {
    install_crypto();
    let server = FakeMetricsServer::start().await.unwrap();
    fill(&server);
    let api: Api<PodMetrics> = Api::all(server.direct_client().unwrap());

    server.set_mode(Mode::Unavailable);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_code(&err), Some(503), "{err}");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.message, "service unavailable");
    assert_eq!(status.reason, "ServiceUnavailable");
    eprintln!("direct, Mode::Unavailable: {err}");

    server.set_mode(Mode::Error500);
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_code(&err), Some(500), "{err}");
    eprintln!("direct, Mode::Error500: {err}");

    server.set_mode(Mode::Serving);
    assert_eq!(
        api.list(&ListParams::default()).await.unwrap().items.len(),
        3
    );

    // A stopped server: connection refused, no HTTP status.
    let before = server.request_count();
    assert!(before >= 3);
    server.stop().await;
    let err = api.list(&ListParams::default()).await.unwrap_err();
    assert_eq!(api_code(&err), None, "{err:?}");
    eprintln!("direct, server stopped: {err}");
}

/// Lists through the API server with a client that does not retry 503s.
async fn aggregated_list() -> Result<Vec<PodMetrics>, kube::Error> {
    let client = client_without_retry().await.expect("client");
    Api::<PodMetrics>::all(client)
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
}

async fn wait_available(
    reg: &vpa_e2e::metrics_server::ApiServiceRegistration,
    want: &str,
) -> anyhow::Result<(String, String, Duration)> {
    let start = Instant::now();
    let (reason, message) = wait_for(&format!("APIService Available={want}"), WAIT, async || {
        let c = reg.available_condition().await?;
        Ok(c.filter(|c| c.status == want)
            .map(|c| (c.reason.unwrap_or_default(), c.message.unwrap_or_default())))
    })
    .await?;
    Ok((reason, message, start.elapsed()))
}

#[tokio::test]
async fn aggregated_path_serves_pod_metrics_and_passes_on_503() {
    let Some(client) = cluster("aggregated_path_serves_pod_metrics_and_passes_on_503")
        .await
        .unwrap()
    else {
        return;
    };
    let server = FakeMetricsServer::start().await.unwrap();
    fill(&server);
    let t = Instant::now();
    let reg = server.register_apiservice(client.clone()).await.unwrap();
    eprintln!(
        "registered and Available after {:?} (lock wait included)",
        t.elapsed()
    );

    // The normal KUBECONFIG client, through the aggregator.
    let all: Api<PodMetrics> = Api::all(client.clone());
    let list = all.list(&ListParams::default()).await.unwrap();
    assert_eq!(
        names(&list.items),
        ["ns-a/hamster-1", "ns-a/other-1", "ns-b/b-1"]
    );
    let ns_b: Api<PodMetrics> = Api::namespaced(client.clone(), "ns-b");
    let pod = ns_b.get("b-1").await.unwrap();
    assert_eq!(pod.container("app").unwrap().cpu(), Some(&q("100m")));
    let selected = Api::<PodMetrics>::namespaced(client.clone(), "ns-a")
        .list(&ListParams::default().labels("app=hamster"))
        .await
        .unwrap();
    assert_eq!(names(&selected.items), ["ns-a/hamster-1"]);
    assert_eq!(server.last_remote_user().as_deref(), Some("vpa-e2e-admin"));
    assert!(server.proxied_request_count() >= 3);
    let missing = ns_b.get("nope").await.unwrap_err();
    assert_eq!(api_code(&missing), Some(404));
    eprintln!("aggregated get of a missing pod: {missing}");

    // kube's discovery sees the group through the API server.
    let discovery = Discovery::new(client.clone())
        .filter(&["metrics.k8s.io"])
        .run()
        .await
        .unwrap();
    let group = discovery
        .get("metrics.k8s.io")
        .expect("metrics.k8s.io discovered");
    let mut kinds: Vec<String> = group
        .recommended_resources()
        .into_iter()
        .map(|(ar, _)| ar.kind)
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["NodeMetrics", "PodMetrics"]);

    // A 500 from the backend passes through (discovery still works, so it stays Available).
    server.set_mode(Mode::Error500);
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(500), "{err}");
    eprintln!("aggregated, Mode::Error500: {err}");

    // 503: first passed through from the backend, then (once the availability controller has
    // seen the failing discovery) answered by the API server itself.
    server.set_mode(Mode::Unavailable);
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(503), "{err}");
    eprintln!("aggregated, Mode::Unavailable, passed through: {err} / {err:?}");
    reg.recheck().await.unwrap();
    let (reason, message, took) = wait_available(&reg, "False").await.unwrap();
    eprintln!(
        "aggregated, Mode::Unavailable: Available=False after {took:?}: reason={reason:?} message={message:?}"
    );
    assert_eq!(reason, "FailedDiscoveryCheck");
    assert!(message.contains("503"), "{message}");
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(503), "{err}");
    eprintln!("aggregated, APIService unavailable: {err} / {err:?}");

    // Recovery without re-registering.
    server.set_mode(Mode::Serving);
    reg.recheck().await.unwrap();
    let (_, _, took) = wait_available(&reg, "True").await.unwrap();
    eprintln!("aggregated: Available=True again after {took:?}");
    wait_for("listing through the API server again", WAIT, async || {
        Ok(aggregated_list().await.ok().filter(|l| l.len() == 3))
    })
    .await
    .unwrap();

    reg.remove().await.unwrap();
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(404), "{err}");
    eprintln!("after removing the APIService: {err}");
}

#[tokio::test]
async fn aggregated_path_with_the_server_stopped() {
    let Some(client) = cluster("aggregated_path_with_the_server_stopped")
        .await
        .unwrap()
    else {
        return;
    };
    let server = FakeMetricsServer::start_with_service("vpa-e2e-metrics")
        .await
        .unwrap();
    fill(&server);
    let t = Instant::now();
    let reg = server.register_apiservice(client.clone()).await.unwrap();
    eprintln!(
        "registered and Available after {:?} (lock wait included)",
        t.elapsed()
    );
    assert_eq!(aggregated_list().await.unwrap().len(), 3);

    // No recheck() here: this shows how long the API server takes on its own (30 s resync).
    let port = server.port();
    server.stop().await;
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(503), "{err}");
    eprintln!("aggregated, server stopped (port {port}): {err} / {err:?}");
    let (reason, message, took) = wait_available(&reg, "False")
        .await
        .context("the APIService should turn unavailable")
        .unwrap();
    eprintln!(
        "aggregated, server stopped: Available=False after {took:?}: reason={reason:?} message={message:?}"
    );
    assert_eq!(reason, "FailedDiscoveryCheck");
    let err = aggregated_list().await.unwrap_err();
    assert_eq!(api_code(&err), Some(503), "{err}");
    eprintln!("aggregated, server stopped, APIService unavailable: {err} / {err:?}");
    reg.remove().await.unwrap();
}
