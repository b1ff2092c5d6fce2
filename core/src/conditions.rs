//! VPA status conditions as the recommender maintains them, and the "missing recommendation"
//! tracker (upstream `model/vpa.go` `UpdateConditions`, `cluster.go` `RecordRecommendation`).

use crate::time::{Duration, Timestamp};
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// The recommender provides a recommendation.
pub const RECOMMENDATION_PROVIDED: &str = "RecommendationProvided";
/// No pods match the VPA's selector.
pub const NO_PODS_MATCHED: &str = "NoPodsMatched";
/// The message upstream sets with [`NO_PODS_MATCHED`].
pub const NO_PODS_MATCHED_MESSAGE: &str = "No pods match this VPA object";

/// One condition, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// True or False.
    pub status: bool,
    /// When the status last changed.
    pub last_transition_time: Timestamp,
    /// Machine-readable reason.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// Conditions by type; iteration is sorted by type, as upstream emits them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions(pub BTreeMap<String, Condition>);

impl Conditions {
    /// Sets a condition; the transition time is kept when the status does not change.
    pub fn set(&mut self, kind: &str, status: bool, reason: &str, message: &str, now: Timestamp) {
        let last_transition_time = match self.0.get(kind) {
            Some(old) if old.status == status => old.last_transition_time,
            _ => now,
        };
        self.0.insert(
            kind.to_string(),
            Condition {
                status,
                last_transition_time,
                reason: reason.to_string(),
                message: message.to_string(),
            },
        );
    }

    /// Removes a condition.
    pub fn delete(&mut self, kind: &str) {
        self.0.remove(kind);
    }

    /// The condition of a type.
    pub fn get(&self, kind: &str) -> Option<&Condition> {
        self.0.get(kind)
    }

    /// Upstream `UpdateConditions`: NoPodsMatched when no pod matches (deleted otherwise), and
    /// RecommendationProvided True when there is a recommendation, else False with the
    /// NoPodsMatched reason and message when no pod matches.
    pub fn update(&mut self, pods_matched: bool, has_recommendation: bool, now: Timestamp) {
        let (reason, message) = if pods_matched {
            self.delete(NO_PODS_MATCHED);
            ("", "")
        } else {
            self.set(
                NO_PODS_MATCHED,
                true,
                NO_PODS_MATCHED,
                NO_PODS_MATCHED_MESSAGE,
                now,
            );
            (NO_PODS_MATCHED, NO_PODS_MATCHED_MESSAGE)
        };
        if has_recommendation {
            self.set(RECOMMENDATION_PROVIDED, true, "", "", now);
        } else {
            self.set(RECOMMENDATION_PROVIDED, false, reason, message, now);
        }
    }
}

/// How long a VPA may go without a recommendation before it is reported again.
pub const RECOMMENDATION_MISSING_MAX_DURATION: Duration = Duration::from_minutes(30);

/// Remembers VPAs without a recommendation and says when one has been so for too long.
#[derive(Debug, Clone)]
pub struct MissingRecommendations<K> {
    last_logged: HashMap<K, Timestamp>,
}

impl<K> Default for MissingRecommendations<K> {
    fn default() -> Self {
        Self {
            last_logged: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> MissingRecommendations<K> {
    /// Records the state of `vpa` at `now`. Returns `Some(message)` when it has had no
    /// recommendation for more than 30 minutes since it was first noticed or last reported.
    pub fn record(
        &mut self,
        vpa: &K,
        display: &str,
        has_recommendation: bool,
        now: Timestamp,
    ) -> Option<String> {
        if has_recommendation {
            self.last_logged.remove(vpa);
            return None;
        }
        match self.last_logged.get(vpa) {
            None => {
                self.last_logged.insert(vpa.clone(), now);
                None
            }
            Some(&last) if last.add(RECOMMENDATION_MISSING_MAX_DURATION) < now => {
                self.last_logged.insert(vpa.clone(), now);
                Some(format!(
                    "VPA {display} is missing recommendation for more than {RECOMMENDATION_MISSING_MAX_DURATION}"
                ))
            }
            Some(_) => None,
        }
    }

    /// Forgets a deleted VPA.
    pub fn forget(&mut self, vpa: &K) {
        self.last_logged.remove(vpa);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_800_000_000)
    }

    #[test]
    fn row_071_pods_and_recommendation() {
        let mut c = Conditions::default();
        c.update(true, true, now());
        let rp = c.get(RECOMMENDATION_PROVIDED).unwrap();
        assert!(rp.status);
        assert_eq!(rp.reason, "");
        assert!(c.get(NO_PODS_MATCHED).is_none());
    }

    #[test]
    fn row_072_no_pods_but_recommendation() {
        let mut c = Conditions::default();
        c.update(false, true, now());
        assert!(c.get(RECOMMENDATION_PROVIDED).unwrap().status);
        let np = c.get(NO_PODS_MATCHED).unwrap();
        assert!(np.status);
        assert_eq!(
            (np.reason.as_str(), np.message.as_str()),
            ("NoPodsMatched", "No pods match this VPA object")
        );
    }

    #[test]
    fn row_073_pods_without_recommendation() {
        let mut c = Conditions::default();
        c.update(true, false, now());
        let rp = c.get(RECOMMENDATION_PROVIDED).unwrap();
        assert!(!rp.status);
        assert_eq!(rp.reason, "");
        assert!(c.get(NO_PODS_MATCHED).is_none());
    }

    #[test]
    fn row_074_no_pods_no_recommendation() {
        let mut c = Conditions::default();
        c.update(false, false, now());
        let rp = c.get(RECOMMENDATION_PROVIDED).unwrap();
        assert!(!rp.status);
        assert_eq!(
            (rp.reason.as_str(), rp.message.as_str()),
            ("NoPodsMatched", "No pods match this VPA object")
        );
        assert!(c.get(NO_PODS_MATCHED).unwrap().status);
        let types: Vec<_> = c.0.keys().map(String::as_str).collect();
        assert_eq!(
            types,
            ["NoPodsMatched", "RecommendationProvided"],
            "sorted by type"
        );
    }

    #[test]
    fn transition_time_is_kept_while_status_holds() {
        let mut c = Conditions::default();
        c.update(true, false, now());
        c.update(true, false, now().add(Duration::from_minutes(5)));
        assert_eq!(
            c.get(RECOMMENDATION_PROVIDED).unwrap().last_transition_time,
            now()
        );
        let later = now().add(Duration::from_minutes(6));
        c.update(true, true, later);
        assert_eq!(
            c.get(RECOMMENDATION_PROVIDED).unwrap().last_transition_time,
            later
        );
    }

    #[test]
    fn row_075_missing_recommendation_is_reported_after_30_minutes() {
        let vpa = ("namespace-1".to_string(), "vpa-1".to_string());
        let name = "namespace-1/vpa-1";
        let mut t = MissingRecommendations::default();
        t.last_logged
            .insert(vpa.clone(), now().sub(Duration::from_minutes(10)));
        assert_eq!(t.record(&vpa, name, false, now()), None);
        assert_eq!(
            t.last_logged[&vpa],
            now().sub(Duration::from_minutes(10)),
            "unchanged"
        );
        t.last_logged
            .insert(vpa.clone(), now().sub(Duration::from_minutes(40)));
        assert_eq!(
            t.record(&vpa, name, false, now()).as_deref(),
            Some("VPA namespace-1/vpa-1 is missing recommendation for more than 30m0s")
        );
        assert_eq!(t.last_logged[&vpa], now());
        assert_eq!(t.record(&vpa, name, true, now()), None);
        assert!(!t.last_logged.contains_key(&vpa));
    }
}
