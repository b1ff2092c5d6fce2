//! The Kubernetes client: upstream's common flags (`--kubeconfig`, `--kube-api-qps`,
//! `--kube-api-burst`) and a kube [`Client`] with client-go's client-side rate limit.
//!
//! The rate limit is a token bucket (client-go's `flowcontrol.NewTokenBucketRateLimiter`): it
//! starts full with `burst` tokens, refills at `qps` per second, and every request waits for a
//! token in arrival order. As in client-go's `rest.Config`, `qps = 0` means 5 and `burst = 0`
//! means 10; a negative `qps` turns the limit off. It is a tower layer put outside kube's own
//! stack, so one logical request takes one token, including a watch when it (re)starts; kube's
//! retries of a 429/503/504 (when `retry` is on) do not take more.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use kube::Client;
use kube::client::ClientBuilder;
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use tokio::time::{Instant, Sleep};

/// Upstream's common client flags.
#[derive(Clone, Debug, PartialEq, clap::Args)]
pub struct KubeArgs {
    /// Path to a kubeconfig. Empty: KUBECONFIG or ~/.kube/config if present, else the in-cluster
    /// service account.
    #[arg(long = "kubeconfig", default_value = "", value_name = "PATH")]
    pub kubeconfig: String,
    /// Client-side limit of API requests per second (0 = client-go's default 5, negative = no
    /// limit).
    #[arg(
        long = "kube-api-qps",
        default_value_t = 50.0,
        allow_negative_numbers = true
    )]
    pub kube_api_qps: f32,
    /// Client-side burst of API requests above the QPS limit (0 = client-go's default 10).
    #[arg(
        long = "kube-api-burst",
        default_value_t = 100,
        allow_negative_numbers = true
    )]
    pub kube_api_burst: i32,
}

impl Default for KubeArgs {
    fn default() -> Self {
        Self {
            kubeconfig: String::new(),
            kube_api_qps: 50.0,
            kube_api_burst: 100,
        }
    }
}

/// client-go's `rest.DefaultQPS`, used for `--kube-api-qps=0`.
pub const DEFAULT_QPS: f64 = 5.0;
/// client-go's `rest.DefaultBurst`, used for `--kube-api-burst=0`.
pub const DEFAULT_BURST: u32 = 10;

/// Errors building the client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `--kubeconfig` names a file that cannot be read or parsed.
    #[error("reading --kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The path given.
        path: String,
        /// Why it failed.
        source: kube::config::KubeconfigError,
    },
    /// Neither a kubeconfig nor the in-cluster configuration was found.
    #[error("finding the cluster (no --kubeconfig given): {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The rate limit flags are out of range.
    #[error("{0}")]
    RateLimit(String),
    /// The user agent is not a valid header value.
    #[error("invalid user agent {0:?}")]
    UserAgent(String),
    /// kube could not build the client (TLS, auth plugin, ...).
    #[error("building the kube client: {0}")]
    Build(#[from] kube::Error),
}

/// Builds the client for `args`: its configuration (see [`KubeArgs::kubeconfig`]), the
/// `User-Agent` header, the rate limit, and kube's default retry of 429/503/504 when `retry`
/// (without it, errors surface at once: kube's retry can hold a refused eviction for minutes).
pub async fn client(args: &KubeArgs, user_agent: &str, retry: bool) -> Result<Client, ClientError> {
    let config = if args.kubeconfig.is_empty() {
        Config::infer().await?
    } else {
        let kubeconfig =
            Kubeconfig::read_from(&args.kubeconfig).map_err(|source| ClientError::Kubeconfig {
                path: args.kubeconfig.clone(),
                source,
            })?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClientError::Kubeconfig {
                path: args.kubeconfig.clone(),
                source,
            })?
    };
    let limit = rate_limit(args.kube_api_qps, args.kube_api_burst)?;
    client_from_config(config, user_agent, retry, limit)
}

/// The token bucket parameters for the flags, `None` for no limit (client-go semantics, see
/// the module docs).
pub fn rate_limit(qps: f32, burst: i32) -> Result<Option<(f64, u32)>, ClientError> {
    if qps.is_nan() {
        return Err(ClientError::RateLimit(
            "--kube-api-qps must be a number".into(),
        ));
    }
    if qps < 0.0 || qps.is_infinite() {
        return Ok(None);
    }
    let qps = if qps == 0.0 {
        DEFAULT_QPS
    } else {
        f64::from(qps)
    };
    let burst = match u32::try_from(burst) {
        Ok(0) => DEFAULT_BURST,
        Ok(b) => b,
        Err(_) => {
            return Err(ClientError::RateLimit(format!(
                "--kube-api-burst must not be negative, got {burst}"
            )));
        }
    };
    Ok(Some((qps, burst)))
}

/// Builds a client from a configuration; `limit` is `(qps, burst)` or `None` for no limit.
pub fn client_from_config(
    mut config: Config,
    user_agent: &str,
    retry: bool,
    limit: Option<(f64, u32)>,
) -> Result<Client, ClientError> {
    config.default_retry = retry;
    let ua = http::HeaderValue::from_str(user_agent)
        .map_err(|_| ClientError::UserAgent(user_agent.to_string()))?;
    config
        .headers
        .retain(|(name, _)| name != http::header::USER_AGENT);
    config.headers.push((http::header::USER_AGENT, ua));
    let builder = ClientBuilder::try_from(config)?;
    Ok(match limit {
        Some((qps, burst)) => builder
            .with_layer(&RateLimitLayer::new(Arc::new(TokenBucket::new(qps, burst))))
            .build(),
        None => builder.build(),
    })
}

/// A token bucket with golang.org/x/time/rate's reservation semantics: it holds at most
/// `burst` tokens, gains `qps` per second, and a request that finds it empty reserves a future
/// token (the balance goes negative) and waits until then.
#[derive(Debug)]
pub struct TokenBucket {
    qps: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket. `qps` must be positive (a non-positive or non-finite rate admits every
    /// request at once).
    pub fn new(qps: f64, burst: u32) -> Self {
        Self {
            qps,
            burst: f64::from(burst),
            state: Mutex::new(BucketState {
                tokens: f64::from(burst),
                last: None,
            }),
        }
    }

    /// Takes one token at `now` and returns when it may be used (`now` if one was available).
    pub fn reserve(&self, now: Instant) -> Instant {
        if !(self.qps > 0.0 && self.qps.is_finite()) {
            return now;
        }
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Time never runs backwards for the bucket, even for a stale `now`.
        let t = s.last.map_or(now, |l| l.max(now));
        let elapsed = s.last.map_or(std::time::Duration::ZERO, |l| t - l);
        s.tokens = (s.tokens + elapsed.as_secs_f64() * self.qps).min(self.burst);
        s.last = Some(t);
        s.tokens -= 1.0;
        if s.tokens >= 0.0 {
            now
        } else {
            t + std::time::Duration::from_secs_f64(-s.tokens / self.qps)
        }
    }

    /// Waits for one token.
    pub async fn acquire(&self) {
        let at = self.reserve(Instant::now());
        tokio::time::sleep_until(at).await;
    }
}

/// Tower layer that makes every request wait for a [`TokenBucket`] token.
#[derive(Clone, Debug)]
pub struct RateLimitLayer {
    bucket: Arc<TokenBucket>,
}

impl RateLimitLayer {
    /// A layer drawing from `bucket` (shared by every service it wraps).
    pub fn new(bucket: Arc<TokenBucket>) -> Self {
        Self { bucket }
    }
}

impl<S> tower::Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            bucket: self.bucket.clone(),
            state: State::Idle,
        }
    }
}

/// The service of [`RateLimitLayer`]. It waits for the token in `poll_ready`, so requests
/// queued in front of it (kube's client buffer) are admitted in order.
#[derive(Debug)]
pub struct RateLimited<S> {
    inner: S,
    bucket: Arc<TokenBucket>,
    state: State,
}

#[derive(Debug)]
enum State {
    Idle,
    Waiting(Pin<Box<Sleep>>),
    HasToken,
}

impl<S, R> tower::Service<R> for RateLimited<S>
where
    S: tower::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            match &mut self.state {
                State::Idle => {
                    let now = Instant::now();
                    let at = self.bucket.reserve(now);
                    self.state = if at <= now {
                        State::HasToken
                    } else {
                        State::Waiting(Box::pin(tokio::time::sleep_until(at)))
                    };
                }
                State::Waiting(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.state = State::HasToken;
                }
                State::HasToken => return self.inner.poll_ready(cx),
            }
        }
    }

    fn call(&mut self, req: R) -> Self::Future {
        // A caller that skipped poll_ready (against the tower contract) still pays a token,
        // just without waiting for it.
        if !matches!(self.state, State::HasToken) {
            let _ = self.bucket.reserve(Instant::now());
        }
        self.state = State::Idle;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use clap::Parser;
    use tower::{Layer as _, Service as _, ServiceExt as _};

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        kube: KubeArgs,
    }

    fn parse(args: &[&str]) -> Result<KubeArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|c| c.kube)
    }

    #[test]
    fn flags_and_defaults() {
        assert_eq!(parse(&[]).unwrap(), KubeArgs::default());
        let a = parse(&[
            "--kubeconfig=/tmp/kc",
            "--kube-api-qps=7.5",
            "--kube-api-burst",
            "3",
        ])
        .unwrap();
        assert_eq!(a.kubeconfig, "/tmp/kc");
        assert_eq!(a.kube_api_qps, 7.5);
        assert_eq!(a.kube_api_burst, 3);
        assert_eq!(parse(&["--kube-api-qps", "-1"]).unwrap().kube_api_qps, -1.0);
        assert!(parse(&["--kube-api-burst=x"]).is_err());
    }

    #[test]
    fn rate_limit_follows_client_go() {
        assert_eq!(rate_limit(50.0, 100).unwrap(), Some((50.0, 100)));
        assert_eq!(
            rate_limit(0.0, 0).unwrap(),
            Some((DEFAULT_QPS, DEFAULT_BURST))
        );
        assert_eq!(rate_limit(-1.0, 0).unwrap(), None);
        assert_eq!(rate_limit(f32::INFINITY, 5).unwrap(), None);
        assert!(rate_limit(f32::NAN, 5).is_err());
        let err = rate_limit(5.0, -1).unwrap_err().to_string();
        assert!(err.contains("--kube-api-burst"), "{err}");
    }

    #[tokio::test]
    async fn bad_flags_are_errors_naming_the_input() {
        let args = KubeArgs {
            kubeconfig: "/nonexistent/kubeconfig".into(),
            ..KubeArgs::default()
        };
        let err = client(&args, "ua", true).await.err().unwrap().to_string();
        assert!(
            err.starts_with("reading --kubeconfig /nonexistent/kubeconfig"),
            "{err}"
        );
        let config = Config::new("http://127.0.0.1:1".parse().unwrap());
        let err = client_from_config(config, "bad\nagent", true, None)
            .err()
            .unwrap();
        assert!(matches!(err, ClientError::UserAgent(_)), "{err}");
    }

    /// Checks that in every window [t, t + w] of the given completion times at most
    /// `burst + qps * w` requests happened (the token bucket's bound).
    fn assert_within_bucket(times: &[Duration], qps: f64, burst: u32) {
        for (i, start) in times.iter().enumerate() {
            for (j, end) in times.iter().enumerate().skip(i) {
                let w = (*end - *start).as_secs_f64();
                let n = (j - i + 1) as f64;
                assert!(
                    // +1: timers round deadlines up to the millisecond.
                    n <= f64::from(burst) + qps * w + 1.0,
                    "{n} requests within {w}s exceeds burst {burst} + {qps}/s"
                );
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_never_exceeds_qps_after_burst() {
        let (qps, burst, n) = (50.0, 100u32, 400usize);
        let bucket = Arc::new(TokenBucket::new(qps, burst));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..n {
            let b = bucket.clone();
            tasks.push(tokio::spawn(async move {
                // Arrivals spread over the first second: the burst absorbs them.
                tokio::time::sleep(Duration::from_millis((i % 10) as u64 * 100)).await;
                b.acquire().await;
                Instant::now() - start
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap());
        }
        times.sort();
        // The burst goes through at once.
        assert_eq!(times.iter().filter(|t| t.is_zero()).count(), 40);
        assert_within_bucket(&times, qps, burst);
        // And the rest at the full rate: (400 - 100) / 50 = 6 s.
        let last = *times.last().unwrap();
        assert!(
            last >= Duration::from_millis(5990) && last <= Duration::from_millis(6010),
            "{last:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bucket_refills_while_idle_up_to_burst() {
        let bucket = TokenBucket::new(10.0, 5);
        let t0 = Instant::now();
        for _ in 0..5 {
            assert_eq!(bucket.reserve(t0), t0);
        }
        // Empty: the next token comes in 100 ms.
        assert_eq!(bucket.reserve(t0), t0 + Duration::from_millis(100));
        // After a long pause the bucket is full again, but not fuller.
        let t1 = t0 + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(bucket.reserve(t1), t1);
        }
        assert_eq!(bucket.reserve(t1), t1 + Duration::from_millis(100));
        assert_eq!(bucket.reserve(t1), t1 + Duration::from_millis(200));
    }

    #[tokio::test(start_paused = true)]
    async fn layer_waits_in_poll_ready() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = calls.clone();
        let inner = tower::service_fn(move |_: ()| {
            c.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, std::convert::Infallible>(Instant::now()) }
        });
        let mut svc = RateLimitLayer::new(Arc::new(TokenBucket::new(4.0, 2))).layer(inner);
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..10 {
            let t = svc.ready().await.unwrap().call(()).await.unwrap();
            times.push(t - start);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        assert_within_bucket(&times, 4.0, 2);
        // Two at once, then one every 250 ms: the 10th at 2 s.
        let near = |d: Duration, ms: u64| {
            d.abs_diff(Duration::from_millis(ms)) <= Duration::from_millis(2)
        };
        assert_eq!(times[1], Duration::ZERO);
        assert!(near(times[2], 250), "{times:?}");
        assert!(near(times[9], 2000), "{times:?}");
    }

    #[tokio::test]
    async fn kube_client_sends_user_agent_and_is_rate_limited() {
        use axum::routing::get;
        let seen = Arc::new(Mutex::new(Vec::<(String, std::time::Instant)>::new()));
        let s = seen.clone();
        let app = axum::Router::new().route(
            "/api/v1/namespaces/default/configmaps/x",
            get(move |headers: http::HeaderMap| {
                let s = s.clone();
                async move {
                    let ua = headers
                        .get(http::header::USER_AGENT)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    s.lock().unwrap().push((ua, std::time::Instant::now()));
                    axum::Json(serde_json::json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "x", "namespace": "default"}
                    }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });

        // Through --kubeconfig, as a binary would.
        let kubeconfig = std::env::temp_dir().join(format!("vpa-core-kc-{}", std::process::id()));
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\ncurrent-context: t\n\
                 clusters: [{{name: t, cluster: {{server: 'http://{addr}'}}}}]\n\
                 contexts: [{{name: t, context: {{cluster: t, user: t}}}}]\n\
                 users: [{{name: t, user: {{}}}}]\n"
            ),
        )
        .unwrap();
        let args = KubeArgs {
            kubeconfig: kubeconfig.display().to_string(),
            kube_api_qps: 20.0,
            kube_api_burst: 2,
        };
        let client = client(&args, "vpa-test/1.0", false).await;
        let _ = std::fs::remove_file(&kubeconfig);
        let client = client.unwrap();
        let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
            kube::Api::namespaced(client, "default");
        let start = std::time::Instant::now();
        let gets = (0..6).map(|_| api.get("x"));
        for r in futures::future::join_all(gets).await {
            r.unwrap();
        }
        let elapsed = start.elapsed();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 6);
        assert!(seen.iter().all(|(ua, _)| ua == "vpa-test/1.0"), "{seen:?}");
        // Burst 2, then 4 more at 20/s: at least 200 ms.
        assert!(elapsed >= Duration::from_millis(190), "{elapsed:?}");
    }
}
