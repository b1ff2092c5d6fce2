//! The status Lease that tells the updater the webhook is alive (upstream's
//! `status_object.go`): `coordination.k8s.io/v1` Lease `--status-lease-name` in
//! `--status-lease-namespace`, `holderIdentity` = hostname, `leaseDurationSeconds` = the
//! renewal interval in whole seconds, `renewTime` set to now every interval. It is created if
//! absent; Conflict and AlreadyExists (another replica got there first) are ignored. Uses only
//! get, create and update, the verbs of upstream's ClusterRole.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};

use crate::metrics::AdmissionMetrics;

/// A fresh status Lease (pure).
pub fn lease_object(
    name: &str,
    namespace: &str,
    holder: &str,
    interval: Duration,
    now: Timestamp,
) -> Lease {
    Lease {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            ..ObjectMeta::default()
        },
        spec: Some(spec(holder, interval, now)),
    }
}

fn spec(holder: &str, interval: Duration, now: Timestamp) -> LeaseSpec {
    LeaseSpec {
        holder_identity: Some(holder.to_string()),
        lease_duration_seconds: Some(i32::try_from(interval.as_secs()).unwrap_or(i32::MAX)),
        renew_time: Some(MicroTime(now)),
        ..LeaseSpec::default()
    }
}

/// `lease` renewed at `now` by `holder` (pure): holder, duration and renewTime replaced, the
/// rest (acquireTime, transitions, resourceVersion) kept.
pub fn renewed(mut lease: Lease, holder: &str, interval: Duration, now: Timestamp) -> Lease {
    let mut s = lease.spec.take().unwrap_or_default();
    let fresh = spec(holder, interval, now);
    s.holder_identity = fresh.holder_identity;
    s.lease_duration_seconds = fresh.lease_duration_seconds;
    s.renew_time = fresh.renew_time;
    lease.spec = Some(s);
    lease
}

/// Renews the status Lease.
pub struct StatusLease {
    api: Api<Lease>,
    name: String,
    holder: String,
    interval: Duration,
    metrics: Arc<AdmissionMetrics>,
}

fn ignorable(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

impl StatusLease {
    /// The Lease `namespace/name`, held by `holder`, renewed every `interval`.
    pub fn new(
        client: Client,
        namespace: &str,
        name: &str,
        holder: &str,
        interval: Duration,
        metrics: Arc<AdmissionMetrics>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            holder: holder.to_string(),
            interval,
            metrics,
        }
    }

    /// One renewal (create if absent); conflicts count as success.
    pub async fn renew(&self, now: Timestamp) -> Result<(), kube::Error> {
        let result = match self.api.get_opt(&self.name).await {
            Ok(None) => {
                let ns = self.api.namespace().unwrap_or_default().to_string();
                let lease = lease_object(&self.name, &ns, &self.holder, self.interval, now);
                self.api
                    .create(&PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Ok(Some(lease)) => {
                let lease = renewed(lease, &self.holder, self.interval, now);
                self.api
                    .replace(&self.name, &PostParams::default(), &lease)
                    .await
                    .map(|_| ())
            }
            Err(e) => Err(e),
        };
        let result = match result {
            Err(e) if ignorable(&e) => Ok(()),
            other => other,
        };
        self.metrics.lease_renewal(result.is_ok());
        result
    }

    /// Renews now and then every interval until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        let mut failing = false;
        loop {
            tokio::select! {
                _ = ticker.tick() => match self.renew(Timestamp::now()).await {
                    Ok(()) => {
                        if failing {
                            tracing::info!(lease = %self.name, "status Lease renewed again");
                        }
                        failing = false;
                    }
                    Err(e) => {
                        // Every failure is counted; the log line only on the first of a run.
                        if !failing {
                            tracing::warn!(lease = %self.name, error = %e, "cannot renew the status Lease");
                        }
                        failing = true;
                    }
                },
                () = &mut stop => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_new_lease_has_upstreams_fields() {
        let now: Timestamp = "2025-01-02T03:04:05.123456Z".parse().unwrap();
        let l = lease_object(
            "vpa-admission-controller",
            "kube-system",
            "pod-a",
            Duration::from_secs(10),
            now,
        );
        assert_eq!(l.metadata.name.as_deref(), Some("vpa-admission-controller"));
        assert_eq!(l.metadata.namespace.as_deref(), Some("kube-system"));
        let s = l.spec.unwrap();
        assert_eq!(s.holder_identity.as_deref(), Some("pod-a"));
        assert_eq!(s.lease_duration_seconds, Some(10));
        assert_eq!(s.renew_time, Some(MicroTime(now)));
        let json = serde_json::to_value(lease_object(
            "n",
            "ns",
            "h",
            Duration::from_millis(10_900),
            now,
        ))
        .unwrap();
        assert_eq!(json["spec"]["leaseDurationSeconds"], 10);
        assert_eq!(json["spec"]["renewTime"], "2025-01-02T03:04:05.123456Z");
    }

    #[test]
    fn only_conflicts_are_ignored() {
        let status = |code: u16, reason: &str| {
            kube::Error::Api(Box::new(
                kube::core::Status::failure("x", reason).with_code(code),
            ))
        };
        assert!(ignorable(&status(409, "Conflict")));
        assert!(ignorable(&status(409, "AlreadyExists")));
        assert!(!ignorable(&status(403, "Forbidden")));
        assert!(!ignorable(&status(404, "NotFound")));
    }

    #[test]
    fn renewal_moves_renew_time_and_keeps_the_rest() {
        let t0: Timestamp = "2025-01-02T03:04:05Z".parse().unwrap();
        let t1: Timestamp = "2025-01-02T03:04:15Z".parse().unwrap();
        let mut l = lease_object("n", "ns", "old", Duration::from_secs(10), t0);
        l.metadata.resource_version = Some("42".into());
        l.spec.as_mut().unwrap().lease_transitions = Some(3);
        let r = renewed(l, "new", Duration::from_secs(10), t1);
        assert_eq!(r.metadata.resource_version.as_deref(), Some("42"));
        let s = r.spec.unwrap();
        assert_eq!(s.holder_identity.as_deref(), Some("new"));
        assert_eq!(s.renew_time, Some(MicroTime(t1)));
        assert_eq!(s.lease_transitions, Some(3));
    }
}
