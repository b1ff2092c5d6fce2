//! The admission-controller liveness gate (`--use-admission-controller-status`): the
//! updater acts only while the admission controller's status Lease is fresh, that is while
//! its creation time or its `spec.renewTime` plus
//! `--admission-controller-status-lease-timeout` is after now. A loop whose Lease is stale,
//! or whose GET fails, does nothing.

use vpa_core::time::{Duration, Timestamp};

/// True when the status Lease is fresh at `now` (`None`: the field is unset).
pub fn admission_status_valid(
    creation: Option<Timestamp>,
    renew_time: Option<Timestamp>,
    timeout: Duration,
    now: Timestamp,
) -> bool {
    let fresh = |t: Option<Timestamp>| t.is_some_and(|t| t.add(timeout) > now);
    fresh(creation) || fresh(renew_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_by_creation_or_renewal() {
        let t = Timestamp::from_unix_seconds;
        let minute = Duration::from_minutes(1);
        assert!(admission_status_valid(Some(t(100)), None, minute, t(159)));
        assert!(!admission_status_valid(Some(t(100)), None, minute, t(160)));
        assert!(admission_status_valid(
            Some(t(0)),
            Some(t(130)),
            minute,
            t(160)
        ));
        assert!(!admission_status_valid(
            Some(t(0)),
            Some(t(100)),
            minute,
            t(160)
        ));
        assert!(!admission_status_valid(None, None, minute, t(0)));
    }
}
