#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axum::http::Request as HttpRequest;
use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tower::ServiceExt as _;
use vpa_core::runtime::shutdown::Shutdown;

use super::*;
use crate::review::tests::{hooks, sample};
use crate::tls::tests::{TempDir, files_in, write_secret_volume};
use crate::tls::{self, Material};

fn app(body_timeout: Duration) -> (Router, Arc<AdmissionMetrics>) {
    let metrics = Arc::new(AdmissionMetrics::unregistered());
    let reviewer = Arc::new(Reviewer::new(hooks()));
    (router(reviewer, metrics.clone(), body_timeout), metrics)
}

async fn call(router: Router, req: HttpRequest<Body>) -> (StatusCode, HeaderMap, Bytes) {
    let resp = router.oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, headers, body)
}

fn post(path: &str, content_type: Option<&str>, body: impl Into<Body>) -> HttpRequest<Body> {
    let mut b = HttpRequest::post(path);
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body.into()).unwrap()
}

#[tokio::test]
async fn every_path_serves_admission_reviews() {
    let (router, _) = app(Duration::from_secs(5));
    for path in ["/", "/mutate", "/validate", "/anything/else"] {
        let (status, headers, body) = call(
            router.clone(),
            post(path, Some("application/json"), sample("pod-create.json")),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["response"]["allowed"], true);
        assert_eq!(json["response"]["patchType"], "JSONPatch");
    }
    let (status, _, body) = call(
        router,
        post(
            "/validate",
            Some("application/json; charset=utf-8"),
            sample("vpa-create.json"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        json["response"]["uid"],
        "b3e9f1d2-7a4c-4e8b-9f60-1c2d3e4f5a6b"
    );
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_a_clear_400() {
    let (router, _) = app(Duration::from_secs(5));
    let (status, _, body) = call(
        router.clone(),
        post("/", Some("text/plain"), sample("pod-create.json")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "Content-Type must be application/json; got \"text/plain\"\n"
    );
    let (status, _, body) = call(router, post("/", None, sample("pod-create.json"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("none was sent"));
}

#[tokio::test]
async fn malformed_reviews_are_400_with_the_reason() {
    let (router, metrics) = app(Duration::from_secs(5));
    let cases = [
        (
            "corpus/truncated.json",
            "the body is not a JSON AdmissionReview",
        ),
        ("corpus/wrong-kind.json", "kind is \"AdmissionReviewList\""),
        (
            "corpus/v1beta1.json",
            "apiVersion is \"admission.k8s.io/v1beta1\"",
        ),
        (
            "corpus/no-request.json",
            "the AdmissionReview has no request",
        ),
        ("corpus/no-uid.json", "request.uid is missing"),
    ];
    for (name, want) in cases {
        let (status, _, body) = call(
            router.clone(),
            post("/", Some("application/json"), sample(name)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{name}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(want), "{name}: {text}");
    }
    drop(metrics);
}

#[tokio::test]
async fn bodies_over_5_mib_are_413() {
    let (router, _) = app(Duration::from_secs(5));
    let big = vec![b' '; 6 * 1024 * 1024];
    // With Content-Length.
    let (status, _, _) = call(
        router.clone(),
        post("/", Some("application/json"), big.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // Streamed without a length.
    let chunks = big
        .chunks(64 * 1024)
        .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    let body = Body::from_stream(futures::stream::iter(chunks));
    let (status, _, body) = call(router.clone(), post("/", Some("application/json"), body)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(String::from_utf8_lossy(&body).contains("5242880 bytes"));
    // Exactly at the limit is read (and then judged as JSON).
    let mut at_limit = sample("pod-create.json");
    at_limit.resize(MAX_BODY_BYTES, b' ');
    let (status, _, _) = call(router, post("/", Some("application/json"), at_limit)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_body_that_stalls_is_408_after_the_body_timeout() {
    let (router, _) = app(Duration::from_millis(200));
    let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"{\"kind\""))]);
    let body = Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending()));
    let start = Instant::now();
    let (status, _, _) = call(router, post("/", Some("application/json"), body)).await;
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(start.elapsed() < Duration::from_secs(2));
}

// ---- the real server over TLS ----

struct Running {
    addr: SocketAddr,
    stop: Shutdown,
    task: tokio::task::JoinHandle<()>,
}

async fn start(certs: &tls::ServingCerts, settings: ServerSettings) -> Running {
    let provider = Arc::new(tls::provider(&tls::cipher_choice("")));
    let config = tls::server_config(
        provider,
        crate::config::MinTlsVersion::Tls12,
        certs.resolver.clone(),
    )
    .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (router, metrics) = app(settings.body_read_timeout);
    let stop = Shutdown::new();
    let task = tokio::spawn(serve(
        listener,
        Arc::new(config),
        router,
        settings,
        metrics,
        stop.clone().cancelled_owned(),
    ));
    Running { addr, stop, task }
}

fn client_config(cas: &[&[u8]], alpn: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for ca in cas {
        for c in CertificateDer::pem_slice_iter(ca) {
            roots.add(c.unwrap()).unwrap();
        }
    }
    let mut c = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    c.alpn_protocols = vec![alpn.to_vec()];
    // Every connection makes a full handshake, so it shows the certificate served now.
    c.resumption = rustls::client::Resumption::disabled();
    Arc::new(c)
}

type Tls = tokio_rustls::client::TlsStream<TcpStream>;

async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> std::io::Result<Tls> {
    let tcp = TcpStream::connect(addr).await?;
    tokio_rustls::TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
}

fn peer_cert(s: &Tls) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

fn review_request(uri: &str) -> HttpRequest<Full<Bytes>> {
    HttpRequest::post(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::HOST, "localhost")
        .body(Full::new(Bytes::from(sample("pod-create.json"))))
        .unwrap()
}

async fn check_response(resp: http::Response<hyper::body::Incoming>) -> Result<(), String> {
    if resp.status() != StatusCode::OK {
        return Err(format!("status {}", resp.status()));
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let json: Value = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
    if json["response"]["allowed"] != true || json["response"]["patch"].is_null() {
        return Err(format!("unexpected review {json}"));
    }
    Ok(())
}

/// One request on a new HTTP/1.1 connection; returns the served certificate.
async fn h1_once(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Result<Vec<u8>, String> {
    let tls = connect(addr, config).await.map_err(|e| e.to_string())?;
    let cert = peer_cert(&tls);
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    if alpn.as_deref() != Some(b"http/1.1") {
        return Err(format!("ALPN {alpn:?}"));
    }
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let resp = send
        .send_request(review_request("/"))
        .await
        .map_err(|e| e.to_string())?;
    check_response(resp).await?;
    Ok(cert)
}

type H2Sender = hyper::client::conn::http2::SendRequest<Full<Bytes>>;

async fn h2_connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> (H2Sender, Vec<u8>) {
    let tls = connect(addr, config).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let cert = peer_cert(&tls);
    let (send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    (send, cert)
}

async fn h2_request(send: &mut H2Sender) -> Result<(), String> {
    send.ready().await.map_err(|e| e.to_string())?;
    let resp = send
        .send_request(review_request("https://localhost/mutate"))
        .await
        .map_err(|e| e.to_string())?;
    check_response(resp).await
}

fn der(pem: &[u8]) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem).unwrap().to_vec()
}

fn settings() -> ServerSettings {
    ServerSettings {
        handshake_timeout: Duration::from_millis(500),
        header_read_timeout: Duration::from_millis(400),
        body_read_timeout: Duration::from_millis(400),
        drain_timeout: Duration::from_secs(5),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_server_serves_h1_and_h2_and_reloads_certificates_without_failed_requests() {
    let sans = tls::generated_sans("vpa-webhook", "kube-system", "");
    let first = tls::generate(&sans).unwrap();
    let second = tls::generate(&sans).unwrap();
    let third = tls::generate(&sans).unwrap();
    let dir = TempDir::new("server");
    write_secret_volume(&dir.0, &first, 1);
    let metrics = Arc::new(AdmissionMetrics::unregistered());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut certs = tls::load(&files_in(&dir.0), &sans, provider, metrics).unwrap();
    let reloader = certs.take_reloader().unwrap();
    let server = start(&certs, settings()).await;
    let reload_stop = Shutdown::new();
    let reload_task = tokio::spawn(reloader.run(
        Duration::from_millis(200),
        reload_stop.clone().cancelled_owned(),
    ));

    let h1 = client_config(&[&first.ca, &second.ca, &third.ca], b"http/1.1");
    let h2 = client_config(&[&first.ca, &second.ca, &third.ca], b"h2");
    assert_eq!(
        h1_once(server.addr, h1.clone()).await.unwrap(),
        der(&first.cert)
    );
    let (mut persistent, cert) = h2_connect(server.addr, h2.clone()).await;
    assert_eq!(cert, der(&first.cert));
    h2_request(&mut persistent).await.unwrap();

    // Clients keep going through the swaps: new HTTP/1.1 and HTTP/2 connections, and the
    // HTTP/2 connection opened before.
    let done = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut load = Vec::new();
    for i in 0..3 {
        let (done, ok, failures, h1, h2) = (
            done.clone(),
            ok.clone(),
            failures.clone(),
            h1.clone(),
            h2.clone(),
        );
        let addr = server.addr;
        load.push(tokio::spawn(async move {
            while !done.load(Ordering::SeqCst) {
                let r = match i {
                    0 => h1_once(addr, h1.clone()).await.map(|_| ()),
                    1 => {
                        let (mut s, _) = h2_connect(addr, h2.clone()).await;
                        h2_request(&mut s).await
                    }
                    _ => Ok(()),
                };
                match r {
                    Ok(()) => {
                        ok.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(e) => failures.lock().unwrap().push(e),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }));
    }

    async fn wait_for_cert(addr: SocketAddr, h1: Arc<rustls::ClientConfig>, want: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if h1_once(addr, h1.clone()).await.unwrap() == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the new certificate was not served in time"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // 1. The kubelet's Secret volume update: `..data` swapped to a new directory.
    tokio::time::sleep(Duration::from_millis(300)).await;
    write_secret_volume(&dir.0, &second, 2);
    wait_for_cert(server.addr, h1.clone(), &der(&second.cert)).await;
    h2_request(&mut persistent).await.unwrap();

    // 2. Files rewritten in place (the visible names become regular files).
    for (name, content) in [
        ("serverKey.pem", &third.key),
        ("serverCert.pem", &third.cert),
        ("caCert.pem", &third.ca),
    ] {
        let path = dir.0.join(name);
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    wait_for_cert(server.addr, h1.clone(), &der(&third.cert)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::SeqCst);
    for t in load {
        t.await.unwrap();
    }
    h2_request(&mut persistent).await.unwrap();
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "failed requests during the swaps: {failures:?}"
    );
    assert!(
        ok.load(Ordering::SeqCst) >= 4,
        "too few requests: {}",
        ok.load(Ordering::SeqCst)
    );

    reload_stop.trigger("test");
    reload_task.await.unwrap();
    server.stop.trigger("test");
    drop(persistent);
    tokio::time::timeout(Duration::from_secs(10), server.task)
        .await
        .unwrap()
        .unwrap();
}

fn generated_certs() -> (tls::ServingCerts, Material) {
    let sans = tls::generated_sans("vpa-webhook", "kube-system", "");
    let m = tls::generate(&sans).unwrap();
    let dir = TempDir::new("gen");
    std::fs::write(dir.0.join("serverCert.pem"), &m.cert).unwrap();
    std::fs::write(dir.0.join("serverKey.pem"), &m.key).unwrap();
    let certs = tls::load(
        &files_in(&dir.0),
        &sans,
        Arc::new(rustls::crypto::ring::default_provider()),
        Arc::new(AdmissionMetrics::unregistered()),
    )
    .unwrap();
    (certs, m)
}

/// Reads until EOF or error; true if the peer closed within `within`.
async fn closed_within(stream: &mut (impl tokio::io::AsyncRead + Unpin), within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before closing is fine.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn a_client_that_stalls_in_the_headers_is_disconnected() {
    let (certs, m) = generated_certs();
    let server = start(&certs, settings()).await;
    let mut tls = connect(server.addr, client_config(&[&m.ca], b"http/1.1"))
        .await
        .unwrap();
    tls.write_all(b"POST / HTTP/1.1\r\nHost: localhost\r\nContent-Ty")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let start = Instant::now();
    assert!(closed_within(&mut tls, Duration::from_secs(3)).await);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "closed too early: {took:?}"
    );
    server.stop.trigger("test");
    server.task.await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_finishes_the_handshake_is_disconnected() {
    let (certs, _) = generated_certs();
    let server = start(&certs, settings()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    assert!(closed_within(&mut tcp, Duration::from_secs(3)).await);
    server.stop.trigger("test");
    server.task.await.unwrap();
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_and_then_returns() {
    let (certs, m) = generated_certs();
    let mut s = settings();
    s.body_read_timeout = Duration::from_secs(5);
    let server = start(&certs, s).await;
    let mut tls = connect(server.addr, client_config(&[&m.ca], b"http/1.1"))
        .await
        .unwrap();
    let body = sample("pod-create.json");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..100]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop.trigger("test");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The listener is closed: new connections are refused.
    assert!(TcpStream::connect(server.addr).await.is_err());
    tls.write_all(&body[100..]).await.unwrap();
    tls.flush().await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut response))
        .await
        .unwrap()
        .ok();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    assert!(text.contains("\"allowed\":true"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), server.task)
        .await
        .unwrap()
        .unwrap();
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;
    use crate::review::tests::{arb_json, arb_mutated_sample};

    /// Through the router: every body is a 400 or a 200 carrying an allowed review (the test
    /// validator only denies VPAs with an updatePolicy lacking updateMode, which the generated
    /// bodies may contain, so denials are accepted for VPA reviews only).
    fn check(rt: &tokio::runtime::Runtime, body: Vec<u8>) {
        let (router, _) = app(Duration::from_secs(5));
        let (status, _, out) = rt.block_on(call(router, post("/", Some("application/json"), body)));
        match status {
            StatusCode::BAD_REQUEST => assert!(!out.is_empty()),
            StatusCode::OK => {
                let json: Value = serde_json::from_slice(&out).unwrap();
                assert_eq!(json["kind"], "AdmissionReview");
                let r = &json["response"];
                assert!(r["uid"].is_string());
                if r["allowed"] != true {
                    assert_eq!(r["status"]["code"], 422, "{json}");
                }
            }
            other => panic!("unexpected status {other}"),
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn router_answers_400_or_a_review_for_any_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            check(&runtime(), body);
        }

        #[test]
        fn router_answers_400_or_a_review_for_any_json(value in arb_json()) {
            check(&runtime(), serde_json::to_vec(&value).unwrap());
        }

        #[test]
        fn router_answers_400_or_a_review_for_damaged_reviews(body in arb_mutated_sample()) {
            check(&runtime(), body);
        }
    }

    #[test]
    fn router_replays_the_corpus() {
        let rt = runtime();
        let dir = crate::review::tests::data_dir().join("corpus");
        for entry in std::fs::read_dir(dir).unwrap() {
            check(&rt, std::fs::read(entry.unwrap().path()).unwrap());
        }
    }
}
