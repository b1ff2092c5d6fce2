//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's `leaderelection`
//! semantics and component-base's `--leader-elect*` flags (upstream's recommender and updater).
//!
//! * A candidate reads the Lease every retry period (with client-go's jitter: ×1 to ×2.2). It
//!   takes the Lease when there is none, when its holder is empty (released), or when the
//!   record has not changed for `leaseDurationSeconds` **as observed on this candidate's own
//!   clock** (so clock skew between nodes does not matter).
//! * Every write is a replace with the `resourceVersion` that was read (or a create), so of
//!   two candidates racing for the same record exactly one succeeds.
//! * The leader renews every retry period. If a renewal round does not succeed within the
//!   renew deadline, or the Lease shows another holder, leadership is lost: the
//!   [`LeaderGuard::lost`] future resolves and the binary should stop (upstream exits). Since
//!   `renew deadline < lease duration`, the old leader gives up before anyone else may take
//!   over.
//! * [`LeaderGuard::release`] writes an empty holder (client-go's `ReleaseOnCancel`) so a
//!   standby takes over on its next retry instead of after a full lease duration. Dropping
//!   the guard without releasing stops renewing (as a crash would); a standby then takes over
//!   after the lease duration.
//!
//! The identity is `<hostname>_<random UUID>`, as client-go's.
//!
//! ```no_run
//! # async fn f(client: kube::Client, shutdown: vpa_core::runtime::shutdown::Shutdown,
//! #            args: vpa_core::runtime::lease::LeaderElectionArgs)
//! #            -> Result<(), Box<dyn std::error::Error>> {
//! use vpa_core::runtime::lease::{LeaderElector, lost};
//! let guard = match args.config("vpa-updater")? {
//!     None => None, // --leader-elect=false
//!     Some(config) => match LeaderElector::new(client, config)?.acquire(&shutdown).await {
//!         Some(guard) => Some(guard),
//!         None => return Ok(()), // shut down while standing by
//!     },
//! };
//! tokio::select! {
//!     _ = shutdown.cancelled() => {}
//!     _ = lost(guard.as_ref()) => return Err("lost the leader lease".into()),
//! }
//! if let Some(guard) = guard {
//!     guard.release().await?;
//! }
//! # Ok(())
//! # }
//! ```

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

use super::shutdown::Shutdown;

/// client-go's `JitterFactor`: the candidate's retry period is stretched by up to this factor.
pub const JITTER_FACTOR: f64 = 1.2;

/// The only supported `--leader-elect-resource-lock`.
pub const RESOURCE_LOCK_LEASES: &str = "leases";

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// A flag or configuration value is out of range.
    #[error("leader election: {0}")]
    Config(String),
    /// Releasing the Lease failed (a standby takes over after the lease duration instead).
    #[error("releasing Lease {lease}: {source}")]
    Release {
        /// `namespace/name`.
        lease: String,
        /// The API error.
        source: kube::Error,
    },
    /// Releasing the Lease timed out.
    #[error("releasing Lease {0}: timed out")]
    ReleaseTimeout(String),
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = crate::time::parse_go_duration(s).map_err(|e| e.to_string())?;
    u64::try_from(d.as_nanos())
        .map(Duration::from_nanos)
        .map_err(|_| format!("duration {s:?} must not be negative"))
}

/// component-base's leader election flags.
#[derive(Clone, Debug, PartialEq, Eq, clap::Args)]
pub struct LeaderElectionArgs {
    /// Start a leader election client and gain leadership before executing the main loop.
    #[arg(long = "leader-elect", num_args = 0..=1, default_value_t = false,
          default_missing_value = "true", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub leader_elect: bool,
    /// How long a standby waits after the last observed renewal before taking over.
    #[arg(long = "leader-elect-lease-duration", default_value = "15s", value_parser = parse_duration, value_name = "DURATION")]
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leadership.
    #[arg(long = "leader-elect-renew-deadline", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub renew_deadline: Duration,
    /// How long candidates wait between attempts to acquire and renew.
    #[arg(long = "leader-elect-retry-period", default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub retry_period: Duration,
    /// The kind of lock object; only "leases" is supported.
    #[arg(long = "leader-elect-resource-lock", default_value = RESOURCE_LOCK_LEASES, value_name = "KIND")]
    pub resource_lock: String,
    /// The name of the Lease (default depends on the component).
    #[arg(long = "leader-elect-resource-name", value_name = "NAME")]
    pub resource_name: Option<String>,
    /// The namespace of the Lease.
    #[arg(
        long = "leader-elect-resource-namespace",
        default_value = "kube-system",
        value_name = "NAMESPACE"
    )]
    pub resource_namespace: String,
}

impl Default for LeaderElectionArgs {
    fn default() -> Self {
        Self {
            leader_elect: false,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
            resource_lock: RESOURCE_LOCK_LEASES.to_string(),
            resource_name: None,
            resource_namespace: "kube-system".to_string(),
        }
    }
}

impl LeaderElectionArgs {
    /// `--leader-elect-resource-name`, or the component's `default` when not given.
    pub fn resource_name(&self, default: &str) -> String {
        self.resource_name
            .clone()
            .unwrap_or_else(|| default.to_string())
    }

    /// The validated configuration with a fresh [`default_identity`], or `None` without
    /// `--leader-elect`.
    pub fn config(&self, default_name: &str) -> Result<Option<LeaderElectionConfig>, LeaseError> {
        if !self.leader_elect {
            return Ok(None);
        }
        if self.resource_lock != RESOURCE_LOCK_LEASES {
            return Err(LeaseError::Config(format!(
                "--leader-elect-resource-lock={:?} is not supported: only {RESOURCE_LOCK_LEASES:?}",
                self.resource_lock
            )));
        }
        let config = LeaderElectionConfig {
            namespace: self.resource_namespace.clone(),
            name: self.resource_name(default_name),
            identity: default_identity(),
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        };
        config.validate()?;
        Ok(Some(config))
    }
}

/// What to elect on and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub name: String,
    /// This candidate's identity (unique per process).
    pub identity: String,
    /// See [`LeaderElectionArgs::lease_duration`].
    pub lease_duration: Duration,
    /// See [`LeaderElectionArgs::renew_deadline`].
    pub renew_deadline: Duration,
    /// See [`LeaderElectionArgs::retry_period`].
    pub retry_period: Duration,
}

impl LeaderElectionConfig {
    /// client-go's checks: all durations positive (whole seconds for the lease duration, which
    /// the Lease stores in seconds), `lease duration > renew deadline > 1.2 × retry period`,
    /// non-empty names and identity.
    pub fn validate(&self) -> Result<(), LeaseError> {
        let err = |m: &str| Err(LeaseError::Config(m.to_string()));
        if self.lease_duration < Duration::from_secs(1) {
            return err("--leader-elect-lease-duration must be at least 1s");
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return err("--leader-elect-lease-duration is too long");
        }
        if self.renew_deadline.is_zero() {
            return err("--leader-elect-renew-deadline must be greater than zero");
        }
        if self.retry_period.is_zero() {
            return err("--leader-elect-retry-period must be greater than zero");
        }
        if self.lease_duration <= self.renew_deadline {
            return err(
                "--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline",
            );
        }
        if self.renew_deadline.as_secs_f64() <= JITTER_FACTOR * self.retry_period.as_secs_f64() {
            return err(
                "--leader-elect-renew-deadline must be greater than 1.2 × --leader-elect-retry-period",
            );
        }
        if self.name.is_empty() {
            return err("--leader-elect-resource-name must not be empty");
        }
        if self.namespace.is_empty() {
            return err("--leader-elect-resource-namespace must not be empty");
        }
        if self.identity.is_empty() {
            return err("the identity must not be empty");
        }
        Ok(())
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }

    fn lease_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// A 64-bit random number from the standard library's randomly keyed hasher (no RNG crate
/// needed for an identity suffix and retry jitter).
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// A random version-4 UUID string.
fn random_uuid() -> String {
    let hi = random_u64();
    let lo = random_u64();
    let b = (u128::from(hi) << 64) | u128::from(lo);
    // Version 4, variant 10xx.
    let b = (b & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let hex = format!("{b:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// client-go's identity: `<hostname>_<random UUID>`.
pub fn default_identity() -> String {
    let host = hostname::get()
        .ok()
        .map(|h| h.to_string_lossy().into_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    format!("{host}_{}", random_uuid())
}

/// `base × (1 + r × JITTER_FACTOR)` with `r` uniform in [0, 1) (client-go's `wait.Jitter`).
fn jittered(base: Duration) -> Duration {
    let r = (random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    base.mul_f64(1.0 + r * JITTER_FACTOR)
}

/// The leader election fields of a Lease (client-go's `LeaderElectionRecord`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaderRecord {
    /// Current holder; empty when released.
    pub holder_identity: String,
    /// How long the record is valid after it was last seen to change.
    pub lease_duration_seconds: i32,
    /// When the current holder acquired it.
    pub acquire_time: Option<Timestamp>,
    /// The holder's last renewal.
    pub renew_time: Option<Timestamp>,
    /// How often the holder changed.
    pub lease_transitions: i32,
}

impl LeaderRecord {
    /// The record in a Lease's spec (missing fields read as empty/zero).
    pub fn from_lease(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        Self {
            holder_identity: spec.holder_identity.unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
            acquire_time: spec.acquire_time.map(|t| t.0),
            renew_time: spec.renew_time.map(|t| t.0),
            lease_transitions: spec.lease_transitions.unwrap_or_default(),
        }
    }

    /// Writes the record into `spec`, keeping its other fields (`strategy`, `preferredHolder`).
    fn apply_to(&self, spec: &mut LeaseSpec) {
        spec.holder_identity = Some(self.holder_identity.clone());
        spec.lease_duration_seconds = Some(self.lease_duration_seconds);
        spec.acquire_time = self.acquire_time.map(MicroTime);
        spec.renew_time = self.renew_time.map(MicroTime);
        spec.lease_transitions = Some(self.lease_transitions);
    }
}

/// What a candidate should do with the Lease it just read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create one with this record.
    Create(LeaderRecord),
    /// Take over or renew: replace the Lease's record (at the `resourceVersion` read).
    Update(LeaderRecord),
    /// Another candidate holds an unexpired Lease.
    HeldBy {
        /// The holder.
        holder: String,
        /// Time left, in this candidate's observation, before it may take over.
        expires_in: Duration,
    },
}

/// The pure core of the election: what one candidate has observed of the Lease and when, on
/// its own clock.
#[derive(Clone, Debug)]
pub struct Observer {
    identity: String,
    lease_seconds: i32,
    observed: Option<(LeaderRecord, Instant)>,
}

impl Observer {
    /// A candidate with `identity` that writes `lease_seconds` into records it holds.
    pub fn new(identity: impl Into<String>, lease_seconds: i32) -> Self {
        Self {
            identity: identity.into(),
            lease_seconds,
            observed: None,
        }
    }

    /// The record last observed, if any.
    pub fn observed(&self) -> Option<&LeaderRecord> {
        self.observed.as_ref().map(|(r, _)| r)
    }

    /// True if the record last observed names this candidate.
    pub fn is_leader(&self) -> bool {
        self.observed()
            .is_some_and(|r| r.holder_identity == self.identity)
    }

    /// Decides on the Lease's `current` record, read at `now` (`wall` is the same instant as
    /// wall-clock time, for the timestamps written). A record different from the last one
    /// observed restarts its expiry clock at `now`.
    pub fn decide(
        &mut self,
        current: Option<&LeaderRecord>,
        now: Instant,
        wall: Timestamp,
    ) -> Decision {
        let mut desired = LeaderRecord {
            holder_identity: self.identity.clone(),
            lease_duration_seconds: self.lease_seconds,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            lease_transitions: 0,
        };
        let Some(current) = current else {
            return Decision::Create(desired);
        };
        let observed_at = match &self.observed {
            Some((r, at)) if r == current => *at,
            _ => {
                self.observed = Some((current.clone(), now));
                now
            }
        };
        let holder = &current.holder_identity;
        if !holder.is_empty() && *holder != self.identity {
            let valid_for =
                Duration::from_secs(u64::try_from(current.lease_duration_seconds).unwrap_or(0));
            let expires = observed_at + valid_for;
            if expires > now {
                return Decision::HeldBy {
                    holder: holder.clone(),
                    expires_in: expires - now,
                };
            }
        }
        if *holder == self.identity {
            desired.acquire_time = current.acquire_time;
            desired.lease_transitions = current.lease_transitions;
        } else {
            desired.lease_transitions = current.lease_transitions.saturating_add(1);
        }
        Decision::Update(desired)
    }

    /// Records a successful write: `record` as the API server returned it, at `now`.
    pub fn written(&mut self, record: LeaderRecord, now: Instant) {
        self.observed = Some((record, now));
    }

    /// The record that releases a Lease this candidate holds (client-go's release: empty
    /// holder, 1 s duration, same transition count), or `None` if it does not hold it.
    pub fn release_record(&self, wall: Timestamp) -> Option<LeaderRecord> {
        let observed = self.observed().filter(|_| self.is_leader())?;
        Some(LeaderRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            acquire_time: Some(wall),
            renew_time: Some(wall),
            lease_transitions: observed.lease_transitions,
        })
    }
}

/// The outcome of one attempt to acquire or renew.
#[derive(Debug)]
enum Attempt {
    /// We hold the Lease now.
    Held,
    /// Someone else does.
    Other(String),
    /// The write lost a race (409) or the API call failed.
    Failed(String),
}

/// A candidate for leadership on one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaderElectionConfig,
    observer: Observer,
}

impl std::fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaderElector")
            .field("config", &self.config)
            .field("observer", &self.observer)
            .finish_non_exhaustive()
    }
}

impl LeaderElector {
    /// A candidate; fails if the configuration is invalid.
    pub fn new(client: Client, config: LeaderElectionConfig) -> Result<Self, LeaseError> {
        config.validate()?;
        Ok(Self {
            api: Api::namespaced(client, &config.namespace),
            observer: Observer::new(config.identity.clone(), config.lease_seconds()),
            config,
        })
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    /// client-go's `tryAcquireOrRenew`: read the Lease, decide, write.
    async fn try_acquire_or_renew(&mut self) -> Attempt {
        let name = self.config.name.clone();
        let lease = match self.api.get_opt(&name).await {
            Ok(l) => l,
            Err(e) => return Attempt::Failed(format!("reading the Lease: {e}")),
        };
        let current = lease.as_ref().map(LeaderRecord::from_lease);
        match self
            .observer
            .decide(current.as_ref(), Instant::now(), Timestamp::now())
        {
            Decision::HeldBy { holder, .. } => Attempt::Other(holder),
            Decision::Create(record) => {
                let mut spec = LeaseSpec::default();
                record.apply_to(&mut spec);
                let new = Lease {
                    metadata: ObjectMeta {
                        name: Some(name),
                        namespace: Some(self.config.namespace.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(spec),
                };
                match self.api.create(&PostParams::default(), &new).await {
                    Ok(created) => {
                        self.observer
                            .written(LeaderRecord::from_lease(&created), Instant::now());
                        Attempt::Held
                    }
                    Err(e) => Attempt::Failed(format!("creating the Lease: {e}")),
                }
            }
            Decision::Update(record) => {
                let Some(mut lease) = lease else {
                    return Attempt::Failed("the Lease vanished".into());
                };
                record.apply_to(lease.spec.get_or_insert_with(LeaseSpec::default));
                match self
                    .api
                    .replace(&name, &PostParams::default(), &lease)
                    .await
                {
                    Ok(updated) => {
                        self.observer
                            .written(LeaderRecord::from_lease(&updated), Instant::now());
                        Attempt::Held
                    }
                    Err(e) => Attempt::Failed(format!("updating the Lease: {e}")),
                }
            }
        }
    }

    /// Stands by until this candidate holds the Lease (`Some`, renewed in the background from
    /// then on) or `shutdown` starts (`None`). API errors are logged and retried.
    pub async fn acquire(mut self, shutdown: &Shutdown) -> Option<LeaderGuard> {
        let lease = self.config.lease_ref();
        tracing::info!(%lease, identity = %self.config.identity, "attempting to acquire the leader Lease");
        let mut last_holder = String::new();
        loop {
            let attempt = tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew()) => r,
            };
            match attempt {
                Ok(Attempt::Held) => break,
                Ok(Attempt::Other(holder)) => {
                    if holder != last_holder {
                        tracing::info!(%lease, leader = %holder, "standing by: another candidate leads");
                        last_holder = holder;
                    }
                }
                Ok(Attempt::Failed(why)) => {
                    tracing::warn!(%lease, error = %why, "acquiring the leader Lease failed; retrying");
                }
                Err(_) => tracing::warn!(%lease, "acquiring the leader Lease timed out; retrying"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                _ = tokio::time::sleep(jittered(self.config.retry_period)) => {}
            }
        }
        tracing::info!(%lease, identity = %self.config.identity, "acquired the leader Lease");
        let lost = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(renew_loop(self, lost.clone(), stop.clone()));
        Some(LeaderGuard {
            lost,
            stop,
            task: Some(task),
        })
    }

    /// Releases the Lease if this candidate still holds it (read again first, so the write
    /// carries the current `resourceVersion` and fails rather than clobbering a new holder).
    async fn release(&mut self) -> Result<(), LeaseError> {
        let lease_ref = self.config.lease_ref();
        let release_err = |source| LeaseError::Release {
            lease: lease_ref.clone(),
            source,
        };
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(release_err)?
        else {
            return Ok(());
        };
        let _ = self.observer.decide(
            Some(&LeaderRecord::from_lease(&lease)),
            Instant::now(),
            Timestamp::now(),
        );
        let Some(record) = self.observer.release_record(Timestamp::now()) else {
            tracing::info!(lease = %lease_ref, "not releasing the leader Lease: held by another candidate");
            return Ok(());
        };
        record.apply_to(lease.spec.get_or_insert_with(LeaseSpec::default));
        let updated = self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map_err(release_err)?;
        self.observer
            .written(LeaderRecord::from_lease(&updated), Instant::now());
        tracing::info!(lease = %lease_ref, "released the leader Lease");
        Ok(())
    }
}

/// Renews every retry period until `stop` (returns the elector, for the release) or until
/// leadership is lost (cancels `lost`).
async fn renew_loop(
    mut elector: LeaderElector,
    lost: CancellationToken,
    stop: CancellationToken,
) -> LeaderElector {
    let lease = elector.config.lease_ref();
    let retry = elector.config.retry_period;
    'rounds: loop {
        tokio::select! {
            _ = stop.cancelled() => return elector,
            _ = tokio::time::sleep(retry) => {}
        }
        let deadline = Instant::now() + elector.config.renew_deadline;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let why = match tokio::time::timeout(remaining, elector.try_acquire_or_renew()).await {
                Ok(Attempt::Held) => continue 'rounds,
                Ok(Attempt::Other(holder)) => {
                    tracing::error!(%lease, leader = %holder, "lost the leader Lease: another candidate holds it");
                    break 'rounds;
                }
                Ok(Attempt::Failed(why)) => why,
                Err(_) => "timed out".to_string(),
            };
            tracing::warn!(%lease, error = %why, "renewing the leader Lease failed");
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                tracing::error!(%lease, deadline = ?elector.config.renew_deadline,
                    "lost the leader Lease: not renewed within the renew deadline");
                break 'rounds;
            }
            tokio::select! {
                _ = stop.cancelled() => return elector,
                _ = tokio::time::sleep(retry.min(remaining)) => {}
            }
        }
    }
    lost.cancel();
    elector
}

/// Held while this process leads. See the module docs for release versus drop.
#[derive(Debug)]
pub struct LeaderGuard {
    lost: CancellationToken,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<LeaderElector>>,
}

impl LeaderGuard {
    /// True until leadership is lost.
    pub fn is_leader(&self) -> bool {
        !self.lost.is_cancelled()
    }

    /// Resolves when leadership is lost (renewal failed past the renew deadline, or another
    /// holder appeared). The process should then stop acting at once.
    pub fn lost(&self) -> WaitForCancellationFuture<'_> {
        self.lost.cancelled()
    }

    /// Stops renewing and hands the Lease over: writes an empty holder so a standby takes
    /// over on its next retry. A no-op (`Ok`) if leadership was already lost. Bounded by the
    /// renew deadline.
    pub async fn release(mut self) -> Result<(), LeaseError> {
        self.stop.cancel();
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let Ok(mut elector) = task.await else {
            // The renewal task panicked or was cancelled: nothing to release with.
            return Ok(());
        };
        if self.lost.is_cancelled() {
            return Ok(());
        }
        // From here on this process no longer acts as the leader.
        self.lost.cancel();
        let deadline = elector.config.renew_deadline;
        let lease = elector.config.lease_ref();
        tokio::time::timeout(deadline, elector.release())
            .await
            .map_err(|_| LeaseError::ReleaseTimeout(lease))?
    }
}

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        // Without release: stop renewing, as a crashed process would.
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.lost.cancel();
    }
}

/// Resolves when `guard`'s leadership is lost; never without a guard (no leader election).
pub async fn lost(guard: Option<&LeaderGuard>) {
    match guard {
        Some(g) => g.lost().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        le: LeaderElectionArgs,
    }

    fn parse(args: &[&str]) -> Result<LeaderElectionArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bin").chain(args.iter().copied())).map(|c| c.le)
    }

    #[test]
    fn flags_default_as_component_base() {
        let a = parse(&[]).unwrap();
        assert_eq!(a, LeaderElectionArgs::default());
        assert!(!a.leader_elect);
        assert_eq!(a.lease_duration, Duration::from_secs(15));
        assert_eq!(a.renew_deadline, Duration::from_secs(10));
        assert_eq!(a.retry_period, Duration::from_secs(2));
        assert_eq!(a.resource_lock, "leases");
        assert_eq!(a.resource_namespace, "kube-system");
        assert_eq!(
            a.resource_name("vpa-recommender-lease"),
            "vpa-recommender-lease"
        );
        assert_eq!(a.config("x").unwrap(), None);
    }

    #[test]
    fn flags_parse_go_syntax() {
        let a = parse(&[
            "--leader-elect",
            "--leader-elect-lease-duration=1m30s",
            "--leader-elect-renew-deadline",
            "20s",
            "--leader-elect-retry-period=1500ms",
            "--leader-elect-resource-name=mine",
            "--leader-elect-resource-namespace=vpa",
        ])
        .unwrap();
        assert!(a.leader_elect);
        assert_eq!(a.lease_duration, Duration::from_secs(90));
        assert_eq!(a.renew_deadline, Duration::from_secs(20));
        assert_eq!(a.retry_period, Duration::from_millis(1500));
        let c = a.config("default-name").unwrap().unwrap();
        assert_eq!((c.namespace.as_str(), c.name.as_str()), ("vpa", "mine"));
        assert!(parse(&["--leader-elect=false"]).is_ok_and(|a| !a.leader_elect));
        assert!(parse(&["--leader-elect=true"]).is_ok_and(|a| a.leader_elect));
        assert!(parse(&["--leader-elect-lease-duration=15"]).is_err());
        assert!(parse(&["--leader-elect-retry-period=-2s"]).is_err());
    }

    #[test]
    fn config_validation_as_client_go() {
        let check = |args: &[&str]| {
            let mut all = vec!["--leader-elect"];
            all.extend_from_slice(args);
            parse(&all)
                .unwrap()
                .config("n")
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert!(check(&[]).is_ok());
        let e = check(&["--leader-elect-resource-lock=endpoints"]).unwrap_err();
        assert!(e.contains("only \"leases\""), "{e}");
        let e = check(&["--leader-elect-lease-duration=10s"]).unwrap_err();
        assert!(
            e.contains("greater than --leader-elect-renew-deadline"),
            "{e}"
        );
        let e = check(&["--leader-elect-retry-period=9s"]).unwrap_err();
        assert!(e.contains("1.2 ×"), "{e}");
        let e = check(&["--leader-elect-retry-period=0s"]).unwrap_err();
        assert!(e.contains("greater than zero"), "{e}");
        let e = check(&[
            "--leader-elect-lease-duration=500ms",
            "--leader-elect-renew-deadline=400ms",
            "--leader-elect-retry-period=100ms",
        ])
        .unwrap_err();
        assert!(e.contains("at least 1s"), "{e}");
        let e = check(&["--leader-elect-resource-name="]).unwrap_err();
        assert!(e.contains("must not be empty"), "{e}");
    }

    #[test]
    fn identity_is_hostname_and_uuid() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        let (host, uuid) = a.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        let parts: Vec<&str> = uuid.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'), "{uuid}");
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"), "{uuid}");
    }

    #[test]
    fn jitter_stays_within_client_go_bounds() {
        let base = Duration::from_secs(2);
        for _ in 0..1000 {
            let d = jittered(base);
            assert!(d >= base && d < base.mul_f64(1.0 + JITTER_FACTOR), "{d:?}");
        }
    }

    fn wall(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn held_by(holder: &str, at: i64, transitions: i32) -> LeaderRecord {
        LeaderRecord {
            holder_identity: holder.into(),
            lease_duration_seconds: 15,
            acquire_time: Some(wall(at)),
            renew_time: Some(wall(at)),
            lease_transitions: transitions,
        }
    }

    #[test]
    fn no_lease_is_created() {
        let mut o = Observer::new("me", 15);
        let t = Instant::now();
        assert_eq!(
            o.decide(None, t, wall(0)),
            Decision::Create(held_by("me", 0, 0))
        );
        assert!(!o.is_leader());
    }

    #[test]
    fn another_holder_expires_on_our_clock_not_theirs() {
        let mut o = Observer::new("me", 15);
        let t0 = Instant::now();
        // Their renewTime is far in the past (clock skew): only our observation counts.
        let theirs = held_by("them", -3600, 2);
        assert!(matches!(
            o.decide(Some(&theirs), t0, wall(0)),
            Decision::HeldBy { ref holder, expires_in } if holder == "them" && expires_in == Duration::from_secs(15)
        ));
        assert!(matches!(
            o.decide(Some(&theirs), t0 + Duration::from_secs(10), wall(10)),
            Decision::HeldBy { expires_in, .. } if expires_in == Duration::from_secs(5)
        ));
        // A renewal (changed record) restarts the clock.
        let renewed = LeaderRecord {
            renew_time: Some(wall(12)),
            ..theirs.clone()
        };
        assert!(matches!(
            o.decide(Some(&renewed), t0 + Duration::from_secs(12), wall(12)),
            Decision::HeldBy { expires_in, .. } if expires_in == Duration::from_secs(15)
        ));
        // Unchanged for 15 s from our first sight of it: take over, one more transition.
        let took = o.decide(Some(&renewed), t0 + Duration::from_secs(27), wall(27));
        assert_eq!(took, Decision::Update(held_by("me", 27, 3)));
    }

    #[test]
    fn released_lease_is_taken_at_once() {
        let mut o = Observer::new("me", 15);
        let released = LeaderRecord {
            holder_identity: String::new(),
            lease_duration_seconds: 1,
            lease_transitions: 4,
            ..held_by("", 0, 4)
        };
        assert_eq!(
            o.decide(Some(&released), Instant::now(), wall(1)),
            Decision::Update(held_by("me", 1, 5))
        );
    }

    #[test]
    fn own_lease_is_renewed_keeping_acquire_time_and_transitions() {
        let mut o = Observer::new("me", 15);
        let t0 = Instant::now();
        let mine = held_by("me", 0, 7);
        o.written(mine.clone(), t0);
        assert!(o.is_leader());
        let d = o.decide(Some(&mine), t0 + Duration::from_secs(2), wall(2));
        assert_eq!(
            d,
            Decision::Update(LeaderRecord {
                renew_time: Some(wall(2)),
                ..mine
            })
        );
    }

    #[test]
    fn leader_sees_a_new_holder_and_stops_leading() {
        let mut o = Observer::new("me", 15);
        let t0 = Instant::now();
        o.written(held_by("me", 0, 0), t0);
        let d = o.decide(
            Some(&held_by("them", 5, 1)),
            t0 + Duration::from_secs(5),
            wall(5),
        );
        assert!(matches!(d, Decision::HeldBy { ref holder, .. } if holder == "them"));
        assert!(!o.is_leader());
        assert_eq!(o.release_record(wall(6)), None);
    }

    #[test]
    fn release_record_empties_the_holder() {
        let mut o = Observer::new("me", 15);
        assert_eq!(o.release_record(wall(0)), None);
        o.written(held_by("me", 0, 3), Instant::now());
        assert_eq!(
            o.release_record(wall(9)),
            Some(LeaderRecord {
                holder_identity: String::new(),
                lease_duration_seconds: 1,
                acquire_time: Some(wall(9)),
                renew_time: Some(wall(9)),
                lease_transitions: 3,
            })
        );
    }

    #[test]
    fn two_observers_racing_produce_one_winner_per_resource_version() {
        // Simulates the API server's optimistic concurrency: both read version 1 and decide
        // to take an expired lease; only the first replace at version 1 succeeds.
        let t0 = Instant::now();
        let stale = held_by("old", 0, 0);
        let mut a = Observer::new("a", 15);
        let mut b = Observer::new("b", 15);
        a.decide(Some(&stale), t0, wall(0));
        b.decide(Some(&stale), t0, wall(0));
        let later = t0 + Duration::from_secs(16);
        let (Decision::Update(ra), Decision::Update(rb)) = (
            a.decide(Some(&stale), later, wall(16)),
            b.decide(Some(&stale), later, wall(16)),
        ) else {
            panic!("both should try to take over");
        };
        let mut version = 1;
        let mut server = stale;
        let mut write = |read_version: u64, rec: &LeaderRecord| {
            if read_version == version {
                server = rec.clone();
                version += 1;
                true
            } else {
                false
            }
        };
        assert!(write(1, &ra));
        a.written(ra.clone(), later);
        assert!(!write(1, &rb));
        // b reads again: a holds a fresh lease now.
        assert!(matches!(
            b.decide(Some(&ra), later, wall(16)),
            Decision::HeldBy { ref holder, .. } if holder == "a"
        ));
        assert!(a.is_leader() && !b.is_leader());
    }

    #[test]
    fn record_round_trips_through_a_lease_and_keeps_other_fields() {
        let rec = held_by("me", 3, 2);
        let mut spec = LeaseSpec {
            strategy: Some("OldestEmulationVersion".into()),
            preferred_holder: Some("x".into()),
            ..LeaseSpec::default()
        };
        rec.apply_to(&mut spec);
        let lease = Lease {
            metadata: ObjectMeta::default(),
            spec: Some(spec.clone()),
        };
        assert_eq!(LeaderRecord::from_lease(&lease), rec);
        assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
        assert_eq!(spec.preferred_holder.as_deref(), Some("x"));
        assert_eq!(
            LeaderRecord::from_lease(&Lease::default()),
            LeaderRecord::default()
        );
    }
}
