//! Leader election (`vpa_core::runtime::lease`) against the local control plane: one leader at
//! a time, a fast hand-over on release, a take-over after the lease duration when the leader
//! freezes, and a leader that notices its Lease was taken. Each test uses its own Lease in its
//! own namespace, with short durations (lease 3 s, renew deadline 2 s, retry 500 ms).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use vpa_core::runtime::client::{KubeArgs, client as kube_client};
use vpa_core::runtime::lease::{LeaderElectionConfig, LeaderElector, LeaderGuard, LeaderRecord};
use vpa_core::runtime::shutdown::Shutdown;
use vpa_e2e::{TestNamespace, cluster, unique_name, with_timeout};

const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(500);
/// The longest a candidate sleeps between attempts (client-go jitter ×2.2).
const MAX_RETRY: Duration = Duration::from_millis(1100);

/// A client made by the runtime module itself (rate limited, no retry), from `KUBECONFIG`.
async fn runtime_client(test: &str) -> anyhow::Result<Option<Client>> {
    if cluster(test).await?.is_none() {
        return Ok(None);
    }
    Ok(Some(
        kube_client(&KubeArgs::default(), "vpa-e2e-lease", false).await?,
    ))
}

fn config(ns: &str, lease: &str, who: &str) -> LeaderElectionConfig {
    LeaderElectionConfig {
        namespace: ns.to_string(),
        name: lease.to_string(),
        identity: format!("{who}_{}", unique_name("id")),
        lease_duration: LEASE,
        renew_deadline: RENEW,
        retry_period: RETRY,
    }
}

async fn record(client: &Client, ns: &str, lease: &str) -> anyhow::Result<LeaderRecord> {
    let l = Api::<Lease>::namespaced(client.clone(), ns)
        .get(lease)
        .await
        .with_context(|| format!("reading Lease {ns}/{lease}"))?;
    Ok(LeaderRecord::from_lease(&l))
}

type Acquire = tokio::task::JoinHandle<Option<LeaderGuard>>;

fn spawn_acquire(elector: LeaderElector, shutdown: &Shutdown) -> Acquire {
    let shutdown = shutdown.clone();
    tokio::spawn(async move { elector.acquire(&shutdown).await })
}

async fn acquired(what: &str, task: Acquire, within: Duration) -> anyhow::Result<LeaderGuard> {
    with_timeout(what, within, async {
        task.await?
            .with_context(|| format!("{what}: acquire returned None"))
    })
    .await
}

#[tokio::test]
async fn one_leader_then_fast_handover_on_release() -> anyhow::Result<()> {
    let Some(client) = runtime_client("one_leader_then_fast_handover_on_release").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "lease-handover").await?;
    let lease = unique_name("lease");
    let shutdown = Shutdown::new();
    let (ca, cb) = (
        config(ns.name(), &lease, "a"),
        config(ns.name(), &lease, "b"),
    );
    let mut ta = spawn_acquire(LeaderElector::new(client.clone(), ca.clone())?, &shutdown);
    let mut tb = spawn_acquire(LeaderElector::new(client.clone(), cb.clone())?, &shutdown);

    let (leader, standby, leader_id, standby_id) = with_timeout("a first leader", 10 * LEASE, async {
        Ok(tokio::select! {
            r = &mut ta => (r?.context("a: None")?, tb, ca.identity.clone(), cb.identity.clone()),
            r = &mut tb => (r?.context("b: None")?, ta, cb.identity.clone(), ca.identity.clone()),
        })
    })
    .await?;

    // Two lease durations with the leader renewing: the standby stays a standby.
    tokio::time::sleep(2 * LEASE).await;
    ensure!(
        leader.is_leader(),
        "the leader lost its Lease while renewing"
    );
    ensure!(!standby.is_finished(), "both candidates lead");
    let r = record(&client, ns.name(), &lease).await?;
    assert_eq!(r.holder_identity, leader_id);
    assert_eq!(r.lease_transitions, 0);
    assert_eq!(r.lease_duration_seconds, 3);
    assert!(r.renew_time > r.acquire_time, "{r:?}");

    // Release: the standby takes over on its next retry, not after a lease duration.
    let released_at = Instant::now();
    leader.release().await?;
    let new_leader = acquired("the standby", standby, LEASE).await?;
    let handover = released_at.elapsed();
    eprintln!("hand-over after release took {handover:?}");
    assert!(
        handover <= MAX_RETRY + Duration::from_millis(700),
        "{handover:?}"
    );
    let r = record(&client, ns.name(), &lease).await?;
    assert_eq!(r.holder_identity, standby_id);
    assert_eq!(r.lease_transitions, 1);

    new_leader.release().await?;
    let r = record(&client, ns.name(), &lease).await?;
    assert_eq!(r.holder_identity, "");
    assert_eq!(r.lease_duration_seconds, 1);
    assert_eq!(r.lease_transitions, 1);
    ns.delete(&client).await
}

#[tokio::test]
async fn frozen_leader_is_replaced_after_lease_duration() -> anyhow::Result<()> {
    let Some(client) = runtime_client("frozen_leader_is_replaced_after_lease_duration").await?
    else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "lease-frozen").await?;
    let lease = unique_name("lease");
    let shutdown = Shutdown::new();
    let ca = config(ns.name(), &lease, "a");
    let cb = config(ns.name(), &lease, "b");
    let a = LeaderElector::new(client.clone(), ca.clone())?;
    let a = acquired("a", spawn_acquire(a, &shutdown), LEASE).await?;
    let b = spawn_acquire(LeaderElector::new(client.clone(), cb.clone())?, &shutdown);
    // Let b watch a renew for a while.
    tokio::time::sleep(3 * RETRY).await;
    ensure!(!b.is_finished(), "b leads while a renews");

    // Freeze a: it stops renewing without releasing.
    let frozen_at = Instant::now();
    drop(a);
    assert_eq!(
        record(&client, ns.name(), &lease).await?.holder_identity,
        ca.identity
    );
    let b = acquired("b after a froze", b, 4 * LEASE).await?;
    let takeover = frozen_at.elapsed();
    eprintln!("take-over after freeze took {takeover:?}");
    // a's last renewal was at most one retry period before the freeze, and b counts the lease
    // duration from when it saw that renewal.
    assert!(
        takeover >= LEASE - RETRY - Duration::from_millis(300),
        "{takeover:?}"
    );
    assert!(
        takeover <= LEASE + 2 * MAX_RETRY + Duration::from_secs(1),
        "{takeover:?}"
    );
    let r = record(&client, ns.name(), &lease).await?;
    assert_eq!(r.holder_identity, cb.identity);
    assert_eq!(r.lease_transitions, 1);
    ensure!(b.is_leader());
    b.release().await?;
    ns.delete(&client).await
}

#[tokio::test]
async fn leader_notices_a_stolen_lease() -> anyhow::Result<()> {
    let Some(client) = runtime_client("leader_notices_a_stolen_lease").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "lease-stolen").await?;
    let lease = unique_name("lease");
    let shutdown = Shutdown::new();
    let a = LeaderElector::new(client.clone(), config(ns.name(), &lease, "a"))?;
    let a = acquired("a", spawn_acquire(a, &shutdown), LEASE).await?;

    // Someone else writes the Lease (e.g. a candidate whose clock saw it expire).
    let api = Api::<Lease>::namespaced(client.clone(), ns.name());
    let mut l = api.get(&lease).await?;
    let spec = l.spec.get_or_insert_default();
    spec.holder_identity = Some("intruder".into());
    spec.renew_time = Some(MicroTime(Timestamp::now()));
    spec.lease_duration_seconds = Some(60);
    let stolen_at = Instant::now();
    api.replace(&lease, &PostParams::default(), &l).await?;

    with_timeout("a noticing the loss", RENEW + RETRY, async {
        a.lost().await;
        Ok(())
    })
    .await?;
    eprintln!("loss noticed after {:?}", stolen_at.elapsed());
    ensure!(!a.is_leader());
    // Releasing after the loss must not clobber the new holder.
    a.release().await?;
    assert_eq!(
        record(&client, ns.name(), &lease).await?.holder_identity,
        "intruder"
    );
    ns.delete(&client).await
}

/// How a worker ends one term as leader.
#[derive(Clone, Copy, Debug)]
enum End {
    Release,
    Freeze,
}

/// One term as leader: start, end, identity, how it ended.
type Term = (Instant, Instant, String, End);

#[tokio::test]
async fn never_two_leaders_under_churn() -> anyhow::Result<()> {
    let Some(client) = runtime_client("never_two_leaders_under_churn").await? else {
        return Ok(());
    };
    let ns = TestNamespace::create(&client, "lease-churn").await?;
    let lease = unique_name("lease");
    let shutdown = Shutdown::new();
    let terms: Arc<Mutex<Vec<Term>>> = Arc::default();
    let run_for = Duration::from_secs(12);

    let mut workers = Vec::new();
    for w in 0..3u32 {
        let (client, ns, lease, shutdown, terms) = (
            client.clone(),
            ns.name().to_string(),
            lease.clone(),
            shutdown.clone(),
            terms.clone(),
        );
        workers.push(tokio::spawn(async move {
            for k in 0u32.. {
                let cfg = config(&ns, &lease, &format!("w{w}"));
                let id = cfg.identity.clone();
                let elector = LeaderElector::new(client.clone(), cfg)?;
                let Some(guard) = elector.acquire(&shutdown).await else {
                    return anyhow::Ok(());
                };
                let start = Instant::now();
                let hold = Duration::from_millis(300 + u64::from((w * 7 + k * 3) % 5) * 200);
                tokio::select! {
                    _ = tokio::time::sleep(hold) => {}
                    _ = guard.lost() => {}
                }
                let end = if (w + k) % 3 == 0 {
                    End::Freeze
                } else {
                    End::Release
                };
                terms.lock().unwrap().push((start, Instant::now(), id, end));
                match end {
                    End::Release => guard.release().await?,
                    End::Freeze => drop(guard),
                }
            }
            Ok(())
        }));
    }
    tokio::time::sleep(run_for).await;
    shutdown.trigger("test over");
    for w in workers {
        with_timeout("a worker to stop", 4 * LEASE, async { w.await? }).await?;
    }

    let mut terms = terms.lock().unwrap().clone();
    terms.sort_by_key(|t| t.0);
    eprintln!(
        "{} terms: {:?}",
        terms.len(),
        terms.iter().map(|t| t.3).collect::<Vec<_>>()
    );
    assert!(
        terms.len() >= 4,
        "too few terms to show anything: {}",
        terms.len()
    );
    assert!(terms.iter().any(|t| matches!(t.3, End::Freeze)));
    for pair in terms.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        assert!(
            next.0 >= prev.1,
            "{} led from {:?} while {} still led until {:?}",
            next.2,
            next.0,
            prev.2,
            prev.1
        );
        assert_ne!(prev.2, next.2, "identities are fresh per term");
    }
    ns.delete(&client).await
}
