//! The webhook's HTTPS server: the axum [`router`] (every path and method goes to one handler,
//! as upstream's `/`, so `/mutate` and `/validate` work too) and [`serve`], the accept loop
//! (rustls, then HTTP/1.1 or HTTP/2 by ALPN via hyper-util) with graceful shutdown.
//!
//! Request handling:
//! * `Content-Type` must be `application/json` (parameters such as `charset` are allowed);
//!   anything else is a 400 naming what was sent (upstream logs it and sends an empty 200).
//! * The body may be at most 5 MiB (413, checked on `Content-Length` first, then while
//!   reading) and must arrive within the body read timeout (408).
//! * A body that is not an `admission.k8s.io/v1` AdmissionReview with a request is a 400 with
//!   the reason; everything else is a 200 with the review from [`crate::review`].
//!
//! Slow or dead clients never hold a task for long: the TLS handshake has a timeout, HTTP/1.1
//! request headers have hyper's header read timeout (which also closes idle keep-alive
//! connections after that long), bodies the read timeout above, and HTTP/2 connections are
//! pinged and closed when the pings go unanswered.
//!
//! Shutdown: when the `shutdown` future resolves the listener is closed, open connections are
//! told to finish (HTTP/1.1: close after the in-flight response; HTTP/2: GOAWAY), and [`serve`]
//! returns once they are done or the drain timeout has passed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::metrics::{AdmissionMetrics, AdmissionResource, AdmissionStatus, Rejection};
use crate::review::{MAX_BODY_BYTES, Reviewer};

/// HTTP/2 keep-alive ping interval (and the time allowed for the answer).
const H2_KEEPALIVE: Duration = Duration::from_secs(20);

/// Timeouts of the HTTPS server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// TLS handshake of a new connection.
    pub handshake_timeout: Duration,
    /// HTTP/1.1 request headers (and idle keep-alive).
    pub header_read_timeout: Duration,
    /// Request body.
    pub body_read_timeout: Duration,
    /// How long open connections may take to finish at shutdown.
    pub drain_timeout: Duration,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(15),
        }
    }
}

#[derive(Clone)]
struct AppState {
    reviewer: Arc<Reviewer>,
    metrics: Arc<AdmissionMetrics>,
    body_read_timeout: Duration,
}

/// The webhook routes: every path and method reaches the admission handler.
pub fn router(
    reviewer: Arc<Reviewer>,
    metrics: Arc<AdmissionMetrics>,
    body_read_timeout: Duration,
) -> Router {
    Router::new().fallback(admit).with_state(AppState {
        reviewer,
        metrics,
        body_read_timeout,
    })
}

fn text(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{message}\n"),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> Result<(), String> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Err("Content-Type must be application/json; none was sent".into());
    };
    let media = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    match media {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        _ => Err(format!(
            "Content-Type must be application/json; got {:?}",
            String::from_utf8_lossy(value.as_bytes())
        )),
    }
}

fn too_large() -> String {
    format!("the request body is larger than {MAX_BODY_BYTES} bytes")
}

async fn admit(State(s): State<AppState>, req: Request) -> Response {
    let start = Instant::now();
    let (response, status, resource) = handle(&s, req).await;
    s.metrics
        .observe(status, resource, start.elapsed().as_secs_f64());
    response
}

async fn handle(s: &AppState, req: Request) -> (Response, AdmissionStatus, AdmissionResource) {
    let reject = |reason: Rejection, code: StatusCode, message: String| {
        tracing::debug!(reason = ?reason, "{message}");
        s.metrics.rejected(reason);
        (
            text(code, message),
            AdmissionStatus::Error,
            AdmissionResource::Unknown,
        )
    };
    let (parts, body) = req.into_parts();
    if let Err(message) = is_json(&parts.headers) {
        return reject(Rejection::ContentType, StatusCode::BAD_REQUEST, message);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return reject(
            Rejection::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            too_large(),
        );
    }
    let collected = tokio::time::timeout(
        s.body_read_timeout,
        Limited::new(body, MAX_BODY_BYTES).collect(),
    )
    .await;
    let bytes = match collected {
        Ok(Ok(c)) => c.to_bytes(),
        Ok(Err(e)) if e.is::<LengthLimitError>() => {
            return reject(
                Rejection::TooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                too_large(),
            );
        }
        Ok(Err(e)) => {
            return reject(
                Rejection::BodyError,
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body: {e}"),
            );
        }
        Err(_) => {
            return reject(
                Rejection::BodyTimeout,
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {:?}",
                    s.body_read_timeout
                ),
            );
        }
    };
    match s.reviewer.review(&bytes) {
        Ok(reviewed) => {
            reviewed.record(&s.metrics);
            let response = (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Body::from(reviewed.to_json()),
            )
                .into_response();
            (response, reviewed.status, reviewed.resource)
        }
        Err(e) => reject(Rejection::Malformed, StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// Binds the webhook port on every IPv4 interface (Go's `:port`), or on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then drains (see the
/// module docs). Returns when every connection is closed or the drain timeout has passed.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    router: Router,
    settings: ServerSettings,
    metrics: Arc<AdmissionMetrics>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_KEEPALIVE)
        .keep_alive_timeout(H2_KEEPALIVE);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                let metrics = metrics.clone();
                tokio::spawn(async move {
                    let stream = match tokio::time::timeout(settings.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            metrics.handshake_failed();
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            metrics.handshake_failed();
                            tracing::debug!(%peer, "TLS handshake timed out");
                            return;
                        }
                    };
                    let conn = builder
                        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(router))
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "webhook listener closed; finishing open connections"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all webhook connections closed"),
        () = tokio::time::sleep(settings.drain_timeout) => {
            tracing::warn!(timeout = ?settings.drain_timeout, "open webhook connections did not finish in time");
        }
    }
}

#[cfg(test)]
mod tests;
