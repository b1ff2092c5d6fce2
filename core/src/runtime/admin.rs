//! The plain-HTTP admin server on `--address`: liveness, readiness and Prometheus metrics.
//!
//! * `GET /healthz` and upstream's alias `GET /health-check`: 200 `ok`, or 500 with the reason
//!   when the main loop has shown no activity for longer than its limit (upstream's recommender
//!   and updater use 5 × their interval, after monitoring starts).
//! * `GET /readyz`: 200 `ok` once every named readiness condition holds, else 503 listing the
//!   ones that do not (e.g. `stores synced`, `leader or standby`).
//! * `GET /metrics`: the registry in the OpenMetrics text format.
//!
//! [`serve`] takes Go-style listen addresses (`:8942` means every IPv4 interface) and returns
//! the bound address, so tests can listen on port 0.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;

/// The content type of `/metrics`.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How liveness is judged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HealthConfig {
    /// Liveness fails once no activity has been marked for longer than this. `None`: liveness
    /// never fails (upstream's admission controller never starts monitoring).
    pub max_activity_age: Option<Duration>,
    /// Time after start-up before the activity clock starts: liveness cannot fail before
    /// `start + startup_grace + max_activity_age`.
    pub startup_grace: Duration,
}

/// Liveness and readiness state, shared (in an `Arc`) by the main loop and the admin server.
#[derive(Debug)]
pub struct Health {
    config: HealthConfig,
    started: Instant,
    state: Mutex<HealthState>,
}

#[derive(Debug, Default)]
struct HealthState {
    last_activity: Option<Instant>,
    /// Condition name → `None` when it holds, else why not.
    conditions: BTreeMap<String, Option<String>>,
}

impl Health {
    /// Health state starting now.
    pub fn new(config: HealthConfig) -> Self {
        Self::new_at(config, Instant::now())
    }

    /// Health state that started at `started`.
    pub fn new_at(config: HealthConfig, started: Instant) -> Self {
        Self {
            config,
            started,
            state: Mutex::new(HealthState::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that the main loop made progress at `now` (upstream's `UpdateLastActivity`).
    pub fn mark_activity(&self, now: Instant) {
        let mut s = self.state();
        if s.last_activity.is_none_or(|l| now > l) {
            s.last_activity = Some(now);
        }
    }

    /// Registers a readiness condition that does not hold yet (no-op if it exists).
    pub fn require(&self, name: impl Into<String>) {
        self.state()
            .conditions
            .entry(name.into())
            .or_insert_with(|| Some("not yet".to_string()));
    }

    /// Sets a readiness condition (registering it if needed).
    pub fn set_ready(&self, name: impl Into<String>, ready: bool) {
        let reason = (!ready).then(|| "not yet".to_string());
        self.state().conditions.insert(name.into(), reason);
    }

    /// Marks a readiness condition as not holding, saying why.
    pub fn set_not_ready(&self, name: impl Into<String>, reason: impl Into<String>) {
        self.state()
            .conditions
            .insert(name.into(), Some(reason.into()));
    }

    /// `Ok` if live at `now`, else why not.
    pub fn liveness(&self, now: Instant) -> Result<(), String> {
        let Some(max_age) = self.config.max_activity_age else {
            return Ok(());
        };
        let grace_end = self.started + self.config.startup_grace;
        let last = self.state().last_activity;
        let reference = last.map_or(grace_end, |l| l.max(grace_end));
        let age = now.saturating_duration_since(reference);
        if age <= max_age {
            return Ok(());
        }
        Err(match last {
            Some(l) => format!(
                "no activity for {} (limit {})",
                go_duration(now.saturating_duration_since(l)),
                go_duration(max_age)
            ),
            None => format!(
                "no activity since start-up {} ago (limit {} after a grace of {})",
                go_duration(now.saturating_duration_since(self.started)),
                go_duration(max_age),
                go_duration(self.config.startup_grace)
            ),
        })
    }

    /// `Ok` if every readiness condition holds, else the ones that do not, as
    /// `"<name>: <reason>"`, sorted by name.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let failing: Vec<String> = self
            .state()
            .conditions
            .iter()
            .filter_map(|(name, reason)| reason.as_ref().map(|r| format!("{name}: {r}")))
            .collect();
        if failing.is_empty() {
            Ok(())
        } else {
            Err(failing)
        }
    }
}

/// A duration in Go's `String` form, truncated to milliseconds (`5m0s`, `1.5s`).
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis().min(i64::MAX as u128 / 1_000_000) as i64;
    crate::time::Duration::from_nanos(ms * 1_000_000).to_string()
}

#[derive(Clone)]
struct AdminState {
    health: Arc<Health>,
    registry: Arc<Mutex<Registry>>,
}

/// The admin routes (see the module docs). Binaries may merge their own routes into it.
pub fn router(health: Arc<Health>, registry: Arc<Mutex<Registry>>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/health-check", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(AdminState { health, registry })
}

async fn healthz(State(s): State<AdminState>) -> Response {
    match s.health.liveness(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{reason}\n")).into_response(),
    }
}

async fn readyz(State(s): State<AdminState>) -> Response {
    match s.health.readiness() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(failing) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", failing.join("\n")),
        )
            .into_response(),
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let mut body = String::new();
    let encoded = {
        let registry = s.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut body, &registry)
    };
    match encoded {
        Ok(()) => ([(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)], body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "encoding metrics failed\n",
            )
                .into_response()
        }
    }
}

/// Errors starting the admin server.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The address is not `host:port` / `:port`.
    #[error("invalid listen address {addr:?}: {why}")]
    Address {
        /// The address given.
        addr: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Binding failed (port in use, unknown host, ...).
    #[error("listening on {addr:?}: {source}")]
    Bind {
        /// The address given.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Splits a Go listen address (`net.Listen`'s `host:port`, `[v6]:port`, `:port`) into host
/// and port. An empty host means every IPv4 interface (`0.0.0.0`). Named ports are not
/// supported.
pub fn parse_listen_address(addr: &str) -> Result<(String, u16), AdminError> {
    let bad = |why| AdminError::Address {
        addr: addr.to_string(),
        why,
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(|| bad("missing port"))?;
    let host = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .ok_or_else(|| bad("unbalanced brackets"))?
    } else if host.contains(':') {
        return Err(bad("too many colons (write IPv6 hosts as [addr]:port)"));
    } else {
        host
    };
    if host.contains(['[', ']']) {
        return Err(bad("unexpected bracket"));
    }
    let port: u16 = port
        .parse()
        .map_err(|_| bad("the port must be a number from 0 to 65535"))?;
    let host = if host.is_empty() { "0.0.0.0" } else { host };
    Ok((host.to_string(), port))
}

/// Binds `addr` (see [`parse_listen_address`]) and serves `router` on it in a spawned task
/// until `shutdown` resolves (then finishes in-flight requests). Returns the bound address and
/// the server task.
pub async fn serve(
    addr: &str,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>), AdminError> {
    let (host, port) = parse_listen_address(addr)?;
    let bind_err = |source| AdminError::Bind {
        addr: addr.to_string(),
        source,
    };
    let listener = tokio::net::TcpListener::bind((host.as_str(), port))
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok((local, task))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use axum::body::Body;
    use axum::http::Request;
    use prometheus_client::metrics::counter::Counter;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tower::ServiceExt as _;

    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn config(max: Option<Duration>, grace: Duration) -> HealthConfig {
        HealthConfig {
            max_activity_age: max,
            startup_grace: grace,
        }
    }

    #[test]
    fn liveness_without_limit_never_fails() {
        let t0 = Instant::now();
        let h = Health::new_at(HealthConfig::default(), t0);
        assert!(h.liveness(t0 + 1000 * MIN).is_ok());
    }

    #[test]
    fn liveness_fails_after_grace_plus_max_age_without_activity() {
        let t0 = Instant::now();
        let h = Health::new_at(config(Some(5 * MIN), 2 * MIN), t0);
        assert!(h.liveness(t0).is_ok());
        assert!(h.liveness(t0 + 7 * MIN).is_ok());
        let err = h
            .liveness(t0 + 7 * MIN + Duration::from_secs(1))
            .unwrap_err();
        assert!(err.contains("no activity since start-up 7m1s ago"), "{err}");
        assert!(err.contains("limit 5m0s after a grace of 2m0s"), "{err}");
    }

    #[test]
    fn activity_keeps_liveness_and_never_shortens_the_grace() {
        let t0 = Instant::now();
        let h = Health::new_at(config(Some(5 * MIN), 2 * MIN), t0);
        // Activity during the grace does not bring the deadline forward.
        h.mark_activity(t0 + MIN);
        assert!(h.liveness(t0 + 7 * MIN).is_ok());
        h.mark_activity(t0 + 10 * MIN);
        // An older timestamp does not move the clock back.
        h.mark_activity(t0 + 9 * MIN);
        assert!(h.liveness(t0 + 15 * MIN).is_ok());
        let err = h
            .liveness(t0 + 15 * MIN + Duration::from_millis(1500))
            .unwrap_err();
        assert_eq!(err, "no activity for 5m1.5s (limit 5m0s)");
    }

    #[test]
    fn readiness_needs_every_condition() {
        let h = Health::new(HealthConfig::default());
        assert!(h.readiness().is_ok());
        h.require("stores synced");
        h.require("leader or standby");
        assert_eq!(
            h.readiness().unwrap_err(),
            ["leader or standby: not yet", "stores synced: not yet"]
        );
        h.set_ready("leader or standby", true);
        h.require("leader or standby"); // does not reset
        h.set_not_ready("stores synced", "pods not listed");
        assert_eq!(
            h.readiness().unwrap_err(),
            ["stores synced: pods not listed"]
        );
        h.set_ready("stores synced", true);
        assert!(h.readiness().is_ok());
        h.set_ready("stores synced", false);
        assert!(h.readiness().is_err());
    }

    fn registry() -> Arc<Mutex<Registry>> {
        let mut r = Registry::default();
        let c = Counter::<u64>::default();
        c.inc_by(3);
        r.register("vpa_test_events", "Test events", c);
        Arc::new(Mutex::new(r))
    }

    async fn get(router: &Router, path: &str) -> (StatusCode, Option<String>, String) {
        let resp = router
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let ct = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string());
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, ct, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn health_endpoints() {
        let started = Instant::now().checked_sub(10 * MIN).unwrap();
        let health = Arc::new(Health::new_at(
            config(Some(5 * MIN), Duration::ZERO),
            started,
        ));
        let router = router(health.clone(), registry());

        for path in ["/healthz", "/health-check"] {
            let (status, _, body) = get(&router, path).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(body.starts_with("no activity since start-up"), "{body}");
        }
        health.mark_activity(Instant::now());
        for path in ["/healthz", "/health-check"] {
            assert_eq!(
                get(&router, path).await,
                (
                    StatusCode::OK,
                    Some("text/plain; charset=utf-8".into()),
                    "ok\n".into()
                )
            );
        }

        let (status, _, body) = get(&router, "/readyz").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "ok\n"));
        health.require("stores synced");
        let (status, _, body) = get(&router, "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body, "not ready:\nstores synced: not yet\n");

        let (status, _, _) = get(&router, "/nope").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn metrics_endpoint_is_openmetrics() {
        let router = router(Arc::new(Health::new(HealthConfig::default())), registry());
        let (status, ct, body) = get(&router, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some(OPENMETRICS_CONTENT_TYPE));
        assert!(body.contains("# TYPE vpa_test_events counter\n"), "{body}");
        assert!(body.contains("vpa_test_events_total 3\n"), "{body}");
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[test]
    fn go_listen_addresses() {
        let p = |s: &str| parse_listen_address(s).map_err(|e| e.to_string());
        assert_eq!(p(":8942").unwrap(), ("0.0.0.0".into(), 8942));
        assert_eq!(p("127.0.0.1:0").unwrap(), ("127.0.0.1".into(), 0));
        assert_eq!(p("localhost:80").unwrap(), ("localhost".into(), 80));
        assert_eq!(p("[::1]:9000").unwrap(), ("::1".into(), 9000));
        assert_eq!(p("[::]:1").unwrap(), ("::".into(), 1));
        for bad in [
            "", "8942", ":http", ":65536", "::1:80", "[::1:80", "a]:80", ":-1",
        ] {
            let err = p(bad).unwrap_err();
            assert!(err.starts_with("invalid listen address"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn serve_binds_port_zero_and_stops_on_shutdown() {
        let health = Arc::new(Health::new(HealthConfig::default()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let (addr, task) = serve("127.0.0.1:0", router(health, registry()), async {
            let _ = rx.await;
        })
        .await
        .unwrap();
        assert!(addr.ip().is_loopback());
        assert_ne!(addr.port(), 0);

        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.1 200 OK\r\n"), "{resp}");
        assert!(resp.ends_with("\r\n\r\nok\n"), "{resp}");

        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }

    #[tokio::test]
    async fn serve_reports_bind_errors() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("127.0.0.1:{}", taken.local_addr().unwrap().port());
        let router = router(Arc::new(Health::new(HealthConfig::default())), registry());
        let err = serve(&addr, router.clone(), std::future::pending())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("listening on {addr:?}")),
            "{err}"
        );
        assert!(matches!(
            serve("nope", router, std::future::pending()).await,
            Err(AdminError::Address { .. })
        ));
    }
}
