//! A test stand-in for metrics-server: serves the resource metrics API (`metrics.k8s.io/v1beta1`,
//! `PodMetrics` and an empty `NodeMetrics` list) over HTTPS on `127.0.0.1:<free port>` from
//! usage the test sets, and can register itself with the API server's aggregation layer.
//!
//! Two ways to reach it:
//! * **Directly**: [`FakeMetricsServer::base_url`] with [`FakeMetricsServer::ca_pem`] as the CA
//!   and `Authorization: Bearer <`[`FakeMetricsServer::token`]`>` (without it: 401). This is what
//!   a "metrics base-URL override" in the recommender uses; [`FakeMetricsServer::direct_client`]
//!   builds such a kube client.
//! * **Through the API server**: [`FakeMetricsServer::register_apiservice`] creates the Service
//!   `kube-system/<service>` of type ExternalName → `localhost` and the APIService
//!   `v1beta1.metrics.k8s.io` (port = our port, caBundle = our CA), then waits until it is
//!   Available. The aggregator dials `https://localhost:<port>` with TLS ServerName
//!   `<service>.kube-system.svc` (a SAN of our certificate).
//!
//! Authentication of proxied requests: the aggregator sends no token. When registering, the fake
//! reads the front-proxy CA from `kube-system/extension-apiserver-authentication`
//! (`requestheader-client-ca-file`, as metrics-server does) and from then on asks clients for an
//! optional certificate. A request is accepted without a token when its connection presented a
//! certificate that chains to that CA *and* it carries `X-Remote-User` (the aggregator's
//! front-proxy identity). Unlike metrics-server the certificate's CN is not checked against
//! `requestheader-allowed-names`. If the API server publishes no front-proxy CA (started without
//! `--requestheader-client-ca-file`), authentication is switched off entirely (logged).
//!
//! **One APIService per cluster.** `v1beta1.metrics.k8s.io` is a cluster-wide name, and the e2e
//! tests of one binary run in parallel. [`FakeMetricsServer::register_apiservice`] therefore takes
//! a process-wide async lock that the returned [`ApiServiceRegistration`] holds until it is
//! removed (or dropped): tests that use the aggregated path run one after another, the others stay
//! parallel. Never register twice from one test (the second call would wait for the first). Test
//! binaries run one at a time under `cargo test`, so the lock is not needed across processes; a
//! stale APIService left by a killed process is deleted by the next registration.
//!
//! While an APIService points at a server that is down or answers discovery with an error, the
//! API server's discovery of `metrics.k8s.io` fails, which also holds up namespace deletion:
//! keep such windows short and remove the registration promptly.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use chrono::{DateTime, SecondsFormat, Utc};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::{
    APIService, APIServiceCondition,
};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Config};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::OwnedMutexGuard;
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;
use vpa_core::api::metrics::PodMetrics;

use crate::{install_crypto, wait_for};

/// The APIService name metrics-server registers.
pub const APISERVICE_NAME: &str = "v1beta1.metrics.k8s.io";
/// The Service name used unless [`FakeMetricsServer::start_with_service`] names another.
pub const DEFAULT_SERVICE: &str = "metrics-server";
/// The namespace of the Service the APIService points at.
pub const SERVICE_NAMESPACE: &str = "kube-system";
/// The window reported unless [`PodOptions::window`] says otherwise (Go duration syntax).
pub const DEFAULT_WINDOW: &str = "1m0s";

const GROUP: &str = "metrics.k8s.io";
const VERSION: &str = "v1beta1";
const GROUP_VERSION: &str = "metrics.k8s.io/v1beta1";
const AUTH_CONFIGMAP: &str = "extension-apiserver-authentication";
const FIELD_MANAGER: &str = "vpa-e2e-fake-metrics";

/// How the fake answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Normal answers.
    #[default]
    Serving,
    /// Every request (discovery included) gets 503 with a `Status` body whose message is
    /// `service unavailable`, the text the aggregator uses for an unavailable APIService. Through
    /// the aggregator this first passes through unchanged; once the availability controller has
    /// noticed (it resyncs every 30 s; observed 0.3 to 27 s) the API server answers 503 itself,
    /// with the plain-text body `service unavailable`.
    Unavailable,
    /// Metrics requests get 500 (`InternalError` Status); discovery still works, so the
    /// APIService stays Available and the 500 reaches clients through the aggregator.
    Error500,
}

/// Extra settings for [`FakeMetricsServer::set_pod_with`].
#[derive(Clone, Debug, Default)]
pub struct PodOptions {
    /// Labels copied into the `PodMetrics` metadata (metrics-server copies the pod's labels).
    pub labels: BTreeMap<String, String>,
    /// The end of the measurement window; `None`: now.
    pub timestamp: Option<DateTime<Utc>>,
    /// The window in Go duration syntax (`30s`, `1m0s`); `None`: [`DEFAULT_WINDOW`].
    pub window: Option<String>,
}

#[derive(Clone, Debug)]
struct PodEntry {
    labels: BTreeMap<String, String>,
    timestamp: String,
    window: String,
    containers: Vec<(String, String, String)>,
}

/// What the handler knows about the connection a request came on.
#[derive(Clone, Copy, Debug)]
struct ConnInfo {
    /// The client presented a certificate that chains to the front-proxy CA.
    front_proxy_cert: bool,
}

struct Shared {
    token: String,
    mode: Mutex<Mode>,
    pods: Mutex<BTreeMap<(String, String), PodEntry>>,
    requests: AtomicU64,
    proxied_requests: AtomicU64,
    last_remote_user: Mutex<Option<String>>,
    auth_disabled: AtomicBool,
    tls: RwLock<Arc<rustls::ServerConfig>>,
    cert_chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn tls_config(&self) -> Arc<rustls::ServerConfig> {
        self.tls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn build_tls(
        &self,
        verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
    ) -> anyhow::Result<Arc<rustls::ServerConfig>> {
        build_tls(&self.cert_chain, &self.key_der, verifier)
    }
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn build_tls(
    chain: &[CertificateDer<'static>],
    key_der: &[u8],
    verifier: Option<Arc<dyn rustls::server::danger::ClientCertVerifier>>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    let builder = match verifier {
        Some(v) => builder.with_client_cert_verifier(v),
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key_der.to_vec()));
    let mut config = builder
        .with_single_cert(chain.to_vec(), key)
        .context("TLS serving certificate")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The fake metrics-server. Dropping it (or [`FakeMetricsServer::stop`]) closes the listener and
/// every open connection.
pub struct FakeMetricsServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    service: String,
    task: JoinHandle<()>,
}

impl FakeMetricsServer {
    /// Starts a server whose certificate is valid for `localhost`, `127.0.0.1` and
    /// `metrics-server.kube-system.svc`, on the current tokio runtime.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_service(DEFAULT_SERVICE).await
    }

    /// Like [`FakeMetricsServer::start`], with another Service name for the registration (its
    /// `<service>.kube-system.svc` is added to the certificate instead of the default one).
    pub async fn start_with_service(service: &str) -> anyhow::Result<Self> {
        install_crypto();
        let (ca_pem, ca_der, chain, key_der) = make_certs(service)?;
        let tls = build_tls(&chain, &key_der, None)?;
        let shared = Arc::new(Shared {
            token: crate::unique_name("fake-metrics-token"),
            mode: Mutex::new(Mode::Serving),
            pods: Mutex::new(BTreeMap::new()),
            requests: AtomicU64::new(0),
            proxied_requests: AtomicU64::new(0),
            last_remote_user: Mutex::new(None),
            auth_disabled: AtomicBool::new(false),
            tls: RwLock::new(tls),
            cert_chain: chain,
            key_der,
        });
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the fake metrics server to 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let router = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(accept_loop(listener, Arc::clone(&shared), router));
        tracing::info!(%addr, "fake metrics server listening");
        Ok(Self {
            shared,
            addr,
            ca_pem,
            ca_der,
            service: service.to_owned(),
            task,
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The PEM of the self-signed CA that issued the serving certificate.
    pub fn ca_pem(&self) -> String {
        self.ca_pem.clone()
    }

    /// The bearer token direct requests must carry.
    pub fn token(&self) -> String {
        self.shared.token.clone()
    }

    /// The Service name the registration uses.
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// A kube `Config` for talking to this server directly: cluster URL [`Self::base_url`], our
    /// CA as the only root, bearer token, kube's retry layer off: with it on (kube's default),
    /// a 503 is retried 15 times with doubling backoff and surfaces only after about 5 minutes
    /// (measured: 312 s, 16 requests).
    pub fn direct_config(&self) -> anyhow::Result<Config> {
        let mut config = Config::new(self.base_url().parse().context("base URL")?);
        config.root_cert = Some(vec![self.ca_der.to_vec()]);
        config.auth_info.token = Some(self.token().into());
        config.default_retry = false;
        config.connect_timeout = Some(Duration::from_secs(5));
        config.read_timeout = Some(Duration::from_secs(15));
        Ok(config)
    }

    /// A kube client from [`Self::direct_config`] (call within a tokio runtime).
    pub fn direct_client(&self) -> anyhow::Result<Client> {
        install_crypto();
        Client::try_from(self.direct_config()?).context("building the direct metrics client")
    }

    /// Sets (or replaces) the usage of one pod: `containers` are `(name, cpu, memory)` quantities
    /// such as `("app", "250m", "300Mi")`; timestamp now (RFC 3339, seconds), window `1m0s`.
    pub fn set_pod(&self, namespace: &str, pod: &str, containers: &[(&str, &str, &str)]) {
        self.set_pod_with(namespace, pod, PodOptions::default(), containers);
    }

    /// [`Self::set_pod`] with labels, timestamp and window.
    pub fn set_pod_with(
        &self,
        namespace: &str,
        pod: &str,
        options: PodOptions,
        containers: &[(&str, &str, &str)],
    ) {
        let entry = PodEntry {
            labels: options.labels,
            timestamp: rfc3339(options.timestamp.unwrap_or_else(Utc::now)),
            window: options.window.unwrap_or_else(|| DEFAULT_WINDOW.to_owned()),
            containers: containers
                .iter()
                .map(|(n, c, m)| ((*n).to_owned(), (*c).to_owned(), (*m).to_owned()))
                .collect(),
        };
        lock(&self.shared.pods).insert((namespace.to_owned(), pod.to_owned()), entry);
    }

    /// Forgets a pod (it disappears from lists; a get answers 404).
    pub fn remove_pod(&self, namespace: &str, pod: &str) {
        lock(&self.shared.pods).remove(&(namespace.to_owned(), pod.to_owned()));
    }

    /// Switches how the server answers from the next request on.
    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.shared.mode) = mode;
    }

    /// The number of HTTP requests received (any path, any answer, the aggregator's discovery
    /// and availability checks included).
    pub fn request_count(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// The number of requests accepted with the aggregator's front-proxy identity.
    pub fn proxied_request_count(&self) -> u64 {
        self.shared.proxied_requests.load(Ordering::Relaxed)
    }

    /// `X-Remote-User` of the last request accepted with the front-proxy identity (the user the
    /// API server authenticated, e.g. `vpa-e2e-admin`, or `system:kube-aggregator` for the
    /// availability checks).
    pub fn last_remote_user(&self) -> Option<String> {
        lock(&self.shared.last_remote_user).clone()
    }

    /// Turns authentication off (any request is served) or back on.
    pub fn set_auth_disabled(&self, disabled: bool) {
        self.shared.auth_disabled.store(disabled, Ordering::Relaxed);
    }

    /// Stops the server: the listener and every open connection are closed.
    pub async fn stop(mut self) {
        self.task.abort();
        // Wait until the task is gone (and with it the listener and the connections).
        let _ = (&mut self.task).await;
    }

    /// Creates the Service `kube-system/<service>` (ExternalName `localhost`) and the APIService
    /// `v1beta1.metrics.k8s.io` pointing at this server, and waits (60 s cap) until the
    /// APIService is Available and a PodMetrics list through the API server succeeds.
    ///
    /// Takes the process-wide aggregation lock first (see the module doc); the registration
    /// holds it until [`ApiServiceRegistration::remove`] or drop.
    pub async fn register_apiservice(
        &self,
        client: Client,
    ) -> anyhow::Result<ApiServiceRegistration> {
        let guard = tokio::time::timeout(
            Duration::from_secs(600),
            Arc::clone(&AGGREGATION_LOCK).lock_owned(),
        )
        .await
        .context("waited 10 min for the metrics APIService lock (registered twice in one test?)")?;
        self.trust_front_proxy(&client).await?;

        let apiservices: Api<APIService> = Api::all(client.clone());
        delete_apiservice(&apiservices).await?;

        let services: Api<Service> = Api::namespaced(client.clone(), SERVICE_NAMESPACE);
        let svc: Service = serde_json::from_value(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": self.service,
                "namespace": SERVICE_NAMESPACE,
                "labels": { crate::E2E_LABEL: "true" }
            },
            "spec": { "type": "ExternalName", "externalName": "localhost" }
        }))?;
        services
            .patch(
                &self.service,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&svc),
            )
            .await
            .with_context(|| format!("applying Service {SERVICE_NAMESPACE}/{}", self.service))?;

        let mut apiservice: APIService = serde_json::from_value(json!({
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": { "name": APISERVICE_NAME, "labels": { crate::E2E_LABEL: "true" } },
            "spec": {
                "group": GROUP,
                "version": VERSION,
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
                "service": {
                    "namespace": SERVICE_NAMESPACE,
                    "name": self.service,
                    "port": i32::from(self.port())
                }
            }
        }))?;
        if let Some(spec) = apiservice.spec.as_mut() {
            spec.ca_bundle = Some(ByteString(self.ca_pem.clone().into_bytes()));
        }
        apiservices
            .create(&PostParams::default(), &apiservice)
            .await
            .context("creating APIService v1beta1.metrics.k8s.io")?;

        let registration = ApiServiceRegistration {
            client: client.clone(),
            service: self.service.clone(),
            removed: false,
            guard: Some(guard),
        };
        wait_for(
            "APIService v1beta1.metrics.k8s.io Available=True",
            Duration::from_secs(60),
            async || {
                let cond = registration.available_condition().await?;
                match cond {
                    Some(c) if c.status == "True" => Ok(Some(())),
                    Some(c) => bail!(
                        "Available={} reason={:?} message={:?}",
                        c.status,
                        c.reason,
                        c.message
                    ),
                    None => Ok(None),
                }
            },
        )
        .await?;
        let pods: Api<PodMetrics> = Api::all(client);
        wait_for(
            "listing PodMetrics through the API server",
            Duration::from_secs(30),
            async || Ok(Some(pods.list(&ListParams::default()).await?)),
        )
        .await?;
        Ok(registration)
    }

    /// Reads the front-proxy CA the API server publishes and asks clients for a certificate
    /// from it (optional) from now on; switches auth off if there is none.
    async fn trust_front_proxy(&self, client: &Client) -> anyhow::Result<()> {
        let cms: Api<ConfigMap> = Api::namespaced(client.clone(), SERVICE_NAMESPACE);
        let cm = cms
            .get_opt(AUTH_CONFIGMAP)
            .await
            .with_context(|| format!("reading {SERVICE_NAMESPACE}/{AUTH_CONFIGMAP}"))?;
        let pem = cm
            .and_then(|cm| cm.data)
            .and_then(|mut d| d.remove("requestheader-client-ca-file"));
        let Some(pem) = pem else {
            tracing::warn!(
                "the API server publishes no requestheader-client-ca-file: authentication of \
                 the fake metrics server is switched off"
            );
            self.set_auth_disabled(true);
            return Ok(());
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.context("parsing the front-proxy CA")?)
                .context("adding the front-proxy CA")?;
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), ring())
            .allow_unauthenticated()
            .build()
            .context("building the front-proxy client verifier")?;
        let config = self.shared.build_tls(Some(verifier))?;
        *self
            .shared
            .tls
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
        Ok(())
    }
}

impl Drop for FakeMetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static AGGREGATION_LOCK: LazyLock<Arc<tokio::sync::Mutex<()>>> =
    LazyLock::new(|| Arc::new(tokio::sync::Mutex::new(())));

/// The registered APIService `v1beta1.metrics.k8s.io` and its Service. Holds the process-wide
/// aggregation lock; [`Self::remove`] (or drop, best effort) deletes both and releases it.
pub struct ApiServiceRegistration {
    client: Client,
    service: String,
    removed: bool,
    guard: Option<OwnedMutexGuard<()>>,
}

impl ApiServiceRegistration {
    /// The APIService's `Available` condition as the API server reports it now.
    pub async fn available_condition(&self) -> anyhow::Result<Option<APIServiceCondition>> {
        let api: Api<APIService> = Api::all(self.client.clone());
        let svc = api
            .get(APISERVICE_NAME)
            .await
            .context("reading APIService v1beta1.metrics.k8s.io")?;
        Ok(svc
            .status
            .and_then(|s| s.conditions)
            .into_iter()
            .flatten()
            .find(|c| c.type_ == "Available"))
    }

    /// Makes the API server's availability controller check the APIService now (by touching an
    /// annotation) instead of at its next 30 s resync, e.g. right after a [`Mode`] change or
    /// [`FakeMetricsServer::stop`]. The condition changes within about a second.
    pub async fn recheck(&self) -> anyhow::Result<()> {
        let api: Api<APIService> = Api::all(self.client.clone());
        let stamp = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
        let patch = json!({ "metadata": { "annotations": { "vpa-rs.test/recheck": stamp } } });
        api.patch(
            APISERVICE_NAME,
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .context("annotating APIService v1beta1.metrics.k8s.io")?;
        Ok(())
    }

    /// Deletes the APIService and the Service, waits until the API server no longer serves
    /// `metrics.k8s.io` (30 s cap), then releases the aggregation lock.
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        let result = cleanup(&self.client, &self.service).await;
        let pods: Api<PodMetrics> = Api::all(self.client.clone());
        let gone = wait_for(
            "metrics.k8s.io to disappear from the API server",
            Duration::from_secs(30),
            async || match pods.list(&ListParams::default()).await {
                Err(kube::Error::Api(s)) if s.code == 404 => Ok(Some(())),
                _ => Ok(None),
            },
        )
        .await;
        drop(self.guard.take());
        result.and(gone)
    }
}

impl Drop for ApiServiceRegistration {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let service = self.service.clone();
        // As for TestNamespace: a fresh runtime and client on another thread.
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                let fut = async {
                    let client = crate::client().await?;
                    cleanup(&client, &service).await
                };
                match tokio::time::timeout(Duration::from_secs(10), fut).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => eprintln!("warning: removing the metrics APIService: {e:#}"),
                    Err(_) => eprintln!("warning: removing the metrics APIService: timed out"),
                }
            });
        });
        let _ = handle.join();
        // The guard (a field) is released after this.
    }
}

async fn cleanup(client: &Client, service: &str) -> anyhow::Result<()> {
    let apiservices: Api<APIService> = Api::all(client.clone());
    let a = delete_apiservice(&apiservices).await;
    let services: Api<Service> = Api::namespaced(client.clone(), SERVICE_NAMESPACE);
    let s = match services.delete(service, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("deleting Service {SERVICE_NAMESPACE}/{service}")),
    };
    a.and(s)
}

/// Deletes the APIService if it exists and waits until it is gone.
async fn delete_apiservice(api: &Api<APIService>) -> anyhow::Result<()> {
    match api.delete(APISERVICE_NAME, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e).context("deleting APIService v1beta1.metrics.k8s.io"),
    }
    wait_for(
        "APIService v1beta1.metrics.k8s.io to be deleted",
        Duration::from_secs(30),
        async || Ok(api.get_opt(APISERVICE_NAME).await?.is_none().then_some(())),
    )
    .await
}

type CertBundle = (
    String,
    CertificateDer<'static>,
    Vec<CertificateDer<'static>>,
    Vec<u8>,
);

/// A fresh CA and a serving certificate signed by it: (CA PEM, CA DER, chain, leaf key PKCS#8).
/// Validity is rcgen's default (1975 to 4096): fine for a throw-away test CA.
fn make_certs(service: &str) -> anyhow::Result<CertBundle> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "vpa-e2e fake metrics-server CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca_params
        .self_signed(&ca_key)
        .context("self-signing the CA")?;
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().context("generating the serving key")?;
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        format!("{service}.{SERVICE_NAMESPACE}.svc"),
    ];
    if service != DEFAULT_SERVICE {
        names.push(format!("{DEFAULT_SERVICE}.{SERVICE_NAMESPACE}.svc"));
    }
    let mut leaf_params = CertificateParams::new(names)?;
    leaf_params.distinguished_name.push(
        DnType::CommonName,
        format!("{service}.{SERVICE_NAMESPACE}.svc"),
    );
    leaf_params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf = leaf_params
        .signed_by(&leaf_key, &issuer)
        .context("signing the serving certificate")?;
    Ok((
        ca_cert.pem(),
        ca_cert.der().clone(),
        vec![leaf.der().clone(), ca_cert.der().clone()],
        leaf_key.serialize_der(),
    ))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, router: Router) {
    // Connections live in this set: aborting the loop drops it, which closes them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let acceptor = TlsAcceptor::from(shared.tls_config());
                    conns.spawn(serve_conn(tcp, peer, acceptor, router.clone()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "fake metrics server: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: TlsAcceptor,
    router: Router,
) {
    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "fake metrics server: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "fake metrics server: TLS handshake timed out");
            return;
        }
    };
    let info = ConnInfo {
        front_proxy_cert: tls
            .get_ref()
            .1
            .peer_certificates()
            .is_some_and(|c| !c.is_empty()),
    };
    let service = TowerToHyperService::new(router.layer(Extension(info)));
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "fake metrics server: connection ended with an error");
    }
}

fn json_response(code: StatusCode, body: Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A `metav1.Status` failure, as the API machinery writes it.
fn status(code: StatusCode, reason: &str, message: &str, details: Option<Value>) -> Response {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    });
    if let (Some(d), Some(obj)) = (details, body.as_object_mut()) {
        obj.insert("details".into(), d);
    }
    json_response(code, body)
}

fn not_found_path() -> Response {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        "the server could not find the requested resource",
        None,
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<ConnInfo>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    let mode = *lock(&shared.mode);
    if mode == Mode::Unavailable {
        return status(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "service unavailable",
            None,
        );
    }
    if !authenticated(&shared, conn, &headers) {
        return status(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Unauthorized",
            None,
        );
    }
    if method != Method::GET && method != Method::HEAD {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("the server does not allow this method on the requested resource ({method})"),
            None,
        );
    }
    let path = uri.path().trim_end_matches('/');
    let prefix = format!("/apis/{GROUP_VERSION}");
    if path == format!("/apis/{GROUP}") {
        return json_response(StatusCode::OK, api_group());
    }
    let Some(rest) = path.strip_prefix(&prefix) else {
        return not_found_path();
    };
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if segments.is_empty() {
        return json_response(StatusCode::OK, api_resource_list());
    }
    if mode == Mode::Error500 {
        let msg = "fake metrics server: injected failure";
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            &format!("Internal error occurred: {msg}"),
            Some(json!({ "causes": [{ "message": msg }] })),
        );
    }
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        return status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource (watch)",
            None,
        );
    }
    let selector = match query.get("labelSelector").map(|s| Selector::parse(s)) {
        None => Selector::default(),
        Some(Ok(s)) => s,
        Some(Err(msg)) => return status(StatusCode::BAD_REQUEST, "BadRequest", &msg, None),
    };
    if query.get("fieldSelector").is_some_and(|f| !f.is_empty()) {
        return status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "fieldSelector is not supported by the fake metrics server",
            None,
        );
    }
    match segments.as_slice() {
        ["pods"] => json_response(StatusCode::OK, pod_list(&shared, None, &selector)),
        ["namespaces", ns, "pods"] => {
            json_response(StatusCode::OK, pod_list(&shared, Some(ns), &selector))
        }
        ["namespaces", ns, "pods", name] => {
            let pods = lock(&shared.pods);
            match pods.get(&((*ns).to_owned(), (*name).to_owned())) {
                Some(entry) => {
                    let mut item = pod_item(ns, name, entry, &rfc3339(Utc::now()));
                    if let Some(obj) = item.as_object_mut() {
                        obj.insert("kind".into(), "PodMetrics".into());
                        obj.insert("apiVersion".into(), GROUP_VERSION.into());
                    }
                    json_response(StatusCode::OK, item)
                }
                None => not_found_object("pods", &format!("{ns}/{name}")),
            }
        }
        ["nodes"] => json_response(
            StatusCode::OK,
            json!({
                "kind": "NodeMetricsList",
                "apiVersion": GROUP_VERSION,
                "metadata": {},
                "items": []
            }),
        ),
        ["nodes", name] => not_found_object("nodes", name),
        _ => not_found_path(),
    }
}

fn not_found_object(resource: &str, name: &str) -> Response {
    let kind = if resource == "pods" {
        "podmetrics"
    } else {
        "nodemetrics"
    };
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("{kind}.{GROUP} \"{name}\" not found"),
        Some(json!({ "name": name, "group": GROUP, "kind": resource })),
    )
}

/// Whether the request is authenticated (see the module doc).
fn authenticated(shared: &Shared, conn: ConnInfo, headers: &HeaderMap) -> bool {
    if shared.auth_disabled.load(Ordering::Relaxed) {
        return true;
    }
    if conn.front_proxy_cert
        && let Some(user) = headers.get("x-remote-user").and_then(|v| v.to_str().ok())
    {
        shared.proxied_requests.fetch_add(1, Ordering::Relaxed);
        *lock(&shared.last_remote_user) = Some(user.to_owned());
        return true;
    }
    let expected = format!("Bearer {}", shared.token);
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn api_group() -> Value {
    let gv = json!({ "groupVersion": GROUP_VERSION, "version": VERSION });
    json!({
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": GROUP,
        "versions": [gv.clone()],
        "preferredVersion": gv
    })
}

fn api_resource_list() -> Value {
    json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": GROUP_VERSION,
        "resources": [
            {
                "name": "nodes",
                "singularName": "",
                "namespaced": false,
                "kind": "NodeMetrics",
                "verbs": ["get", "list"]
            },
            {
                "name": "pods",
                "singularName": "",
                "namespaced": true,
                "kind": "PodMetrics",
                "verbs": ["get", "list"]
            }
        ]
    })
}

fn pod_item(ns: &str, name: &str, entry: &PodEntry, created: &str) -> Value {
    let mut metadata = json!({
        "name": name,
        "namespace": ns,
        "creationTimestamp": created,
    });
    if !entry.labels.is_empty()
        && let Some(obj) = metadata.as_object_mut()
    {
        obj.insert("labels".into(), json!(entry.labels));
    }
    let containers: Vec<Value> = entry
        .containers
        .iter()
        .map(|(n, cpu, mem)| json!({ "name": n, "usage": { "cpu": cpu, "memory": mem } }))
        .collect();
    json!({
        "metadata": metadata,
        "timestamp": entry.timestamp,
        "window": entry.window,
        "containers": containers
    })
}

fn pod_list(shared: &Shared, ns: Option<&str>, selector: &Selector) -> Value {
    let created = rfc3339(Utc::now());
    let pods = lock(&shared.pods);
    let items: Vec<Value> = pods
        .iter()
        .filter(|((pns, _), e)| ns.is_none_or(|n| n == pns) && selector.matches(&e.labels))
        .map(|((pns, name), e)| pod_item(pns, name, e, &created))
        .collect();
    json!({
        "kind": "PodMetricsList",
        "apiVersion": GROUP_VERSION,
        "metadata": {},
        "items": items
    })
}

/// The equality-based part of label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, comma-joined.
#[derive(Debug, Default)]
struct Selector {
    terms: Vec<Term>,
}

#[derive(Debug)]
enum Term {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
}

impl Selector {
    fn parse(s: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for raw in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let term = if let Some((k, v)) = raw.split_once("!=") {
                Term::Ne(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = raw.split_once("==").or_else(|| raw.split_once('=')) {
                Term::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some(k) = raw.strip_prefix('!') {
                Term::NotExists(k.trim().to_owned())
            } else if raw.contains(' ') || raw.contains('(') {
                return Err(format!(
                    "unable to parse requirement {raw:?}: set-based selectors are not supported by \
                     the fake metrics server"
                ));
            } else {
                Term::Exists(raw.to_owned())
            };
            terms.push(term);
        }
        Ok(Self { terms })
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| match t {
            Term::Eq(k, v) => labels.get(k) == Some(v),
            Term::Ne(k, v) => labels.get(k) != Some(v),
            Term::Exists(k) => labels.contains_key(k),
            Term::NotExists(k) => !labels.contains_key(k),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn selector_terms() {
        let labels: BTreeMap<String, String> =
            [("app".to_owned(), "a".to_owned())].into_iter().collect();
        assert!(Selector::parse("app=a").unwrap().matches(&labels));
        assert!(Selector::parse("app==a,!tier").unwrap().matches(&labels));
        assert!(!Selector::parse("app!=a").unwrap().matches(&labels));
        assert!(!Selector::parse("tier").unwrap().matches(&labels));
        assert!(Selector::parse("").unwrap().matches(&labels));
        assert!(Selector::parse("app in (a,b)").is_err());
    }
}
