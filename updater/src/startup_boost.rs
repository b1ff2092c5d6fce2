//! The unboost side of the CPU startup boost (feature gate `CPUStartupBoost`): when a pod
//! whose CPU the admission controller boosted may be resized back (upstream
//! `GetExpiredStartupCPUBoostAnnotations`, `CanUnboost`).
//!
//! A container's boost has expired once the pod is Ready and its `durationSeconds` (the
//! container policy's, else the VPA's, else zero) has passed since the Ready transition; a
//! zero duration expires as soon as the pod is Ready. A pod is unboosted when the gate is
//! on, it is not `Pending`, some boost expired, it is in a replica group, it is not already
//! resizing, and its group can tolerate a disruption.

use crate::in_place::is_in_place_updating;
use crate::restriction::GroupStats;
use crate::settings::FeatureGates;
use crate::view::{PodConditionType, PodView, VpaView};
use vpa_core::time::{Duration, Timestamp, since};

/// True when the VPA has a startup boost, top-level or in a container policy (upstream
/// `HasStartupBoost`).
pub fn has_startup_boost(vpa: &VpaView) -> bool {
    vpa.startup_boost.is_some()
        || vpa
            .container_policies
            .iter()
            .any(|p| p.startup_boost.is_some())
}

/// How long a container's boost lasts after the pod is Ready.
pub fn boost_duration(vpa: &VpaView, container: &str) -> Duration {
    vpa.container_policy(container)
        .and_then(|p| p.startup_boost)
        .and_then(|b| b.duration)
        .or_else(|| vpa.startup_boost.and_then(|b| b.duration))
        .unwrap_or(Duration::ZERO)
}

/// The boosted containers of the pod whose boost has expired at `now`.
pub fn expired_boosts<'p>(pod: &'p PodView, vpa: &VpaView, now: Timestamp) -> Vec<&'p str> {
    let Some(ready) = pod.condition(PodConditionType::Ready).filter(|c| c.is_true) else {
        return Vec::new();
    };
    let since_ready = since(Some(now), ready.last_transition);
    pod.boosted_containers
        .iter()
        .map(String::as_str)
        .filter(|c| {
            let d = boost_duration(vpa, c);
            d == Duration::ZERO || since_ready > d
        })
        .collect()
}

/// Why a boosted pod is not unboosted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnboostBlock {
    /// The `CPUStartupBoost` gate is off.
    GateOff,
    /// The pod is `Pending`.
    Pending,
    /// No boost has expired yet.
    NotExpired,
    /// The pod is not in a replica group.
    NotInReplicaGroup,
    /// The pod is already resizing.
    Resizing,
    /// The replica group cannot tolerate another disruption now.
    DisruptionBudget,
}

/// Whether the pod may be unboosted now: the containers whose boost expired, or why not.
/// `stats` is the pod's replica group.
pub fn can_unboost<'p>(
    pod: &'p PodView,
    vpa: &VpaView,
    stats: Option<&GroupStats>,
    gates: &FeatureGates,
    now: Timestamp,
) -> Result<Vec<&'p str>, UnboostBlock> {
    if !gates.cpu_startup_boost {
        return Err(UnboostBlock::GateOff);
    }
    if pod.is_pending() {
        return Err(UnboostBlock::Pending);
    }
    let expired = expired_boosts(pod, vpa, now);
    if expired.is_empty() {
        return Err(UnboostBlock::NotExpired);
    }
    let Some(stats) = stats else {
        return Err(UnboostBlock::NotInReplicaGroup);
    };
    if is_in_place_updating(pod) {
        return Err(UnboostBlock::Resizing);
    }
    if stats.is_pod_disruptable() {
        Ok(expired)
    } else {
        Err(UnboostBlock::DisruptionBudget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ContainerPolicyView, PodCondition, PodPhase, StartupBoostView};

    fn t(s: i64) -> Timestamp {
        Timestamp::from_unix_seconds(1_700_000_000 + s)
    }

    fn ready_at(s: i64) -> PodCondition {
        PodCondition {
            kind: PodConditionType::Ready,
            is_true: true,
            reason: String::new(),
            message: String::new(),
            last_transition: Some(t(s)),
        }
    }

    fn boosted_pod() -> PodView {
        PodView {
            name: "p".into(),
            boosted_containers: vec!["app".into(), "side".into()],
            conditions: vec![ready_at(0)],
            ..Default::default()
        }
    }

    fn vpa(global: Option<i64>, app: Option<i64>) -> VpaView {
        VpaView {
            startup_boost: global.map(|s| StartupBoostView {
                duration: Some(Duration::from_secs(s)),
            }),
            container_policies: vec![ContainerPolicyView {
                container_name: "app".into(),
                startup_boost: app.map(|s| StartupBoostView {
                    duration: Some(Duration::from_secs(s)),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }
    }

    fn disruptable() -> GroupStats {
        GroupStats {
            configured: 3,
            running: 3,
            eviction_tolerance: 1,
            ..Default::default()
        }
    }

    const ON: FeatureGates = FeatureGates {
        cpu_startup_boost: true,
        in_place: false,
        per_vpa_config: false,
    };

    #[test]
    fn has_boost_top_level_or_in_a_container_policy() {
        assert!(!has_startup_boost(&vpa(None, None)));
        assert!(has_startup_boost(&vpa(Some(1), None)));
        assert!(has_startup_boost(&vpa(None, Some(1))));
    }

    #[test]
    fn container_duration_takes_precedence() {
        let v = vpa(Some(30), Some(10));
        assert_eq!(boost_duration(&v, "app"), Duration::from_secs(10));
        assert_eq!(boost_duration(&v, "side"), Duration::from_secs(30));
        assert_eq!(boost_duration(&vpa(None, None), "side"), Duration::ZERO);
    }

    #[test]
    fn boosts_expire_after_their_duration_since_ready() {
        let v = vpa(Some(30), Some(10));
        let p = boosted_pod();
        assert!(expired_boosts(&p, &v, t(10)).is_empty());
        assert_eq!(expired_boosts(&p, &v, t(11)), vec!["app"]);
        assert_eq!(expired_boosts(&p, &v, t(31)), vec!["app", "side"]);
        // Zero duration: expired as soon as the pod is Ready.
        assert_eq!(
            expired_boosts(&p, &vpa(None, None), t(0)),
            vec!["app", "side"]
        );
        // Not Ready: nothing expires.
        let mut not_ready = p.clone();
        if let Some(c) = not_ready.conditions.first_mut() {
            c.is_true = false;
        }
        assert!(expired_boosts(&not_ready, &vpa(None, None), t(100)).is_empty());
    }

    #[test]
    fn unboost_requirements() {
        let v = vpa(None, None);
        let p = boosted_pod();
        let s = disruptable();
        assert_eq!(
            can_unboost(&p, &v, Some(&s), &ON, t(1)),
            Ok(vec!["app", "side"])
        );
        assert_eq!(
            can_unboost(&p, &v, Some(&s), &FeatureGates::default(), t(1)),
            Err(UnboostBlock::GateOff)
        );
        let mut pending = p.clone();
        pending.phase = PodPhase::Pending;
        assert_eq!(
            can_unboost(&pending, &v, Some(&s), &ON, t(1)),
            Err(UnboostBlock::Pending)
        );
        assert_eq!(
            can_unboost(&p, &vpa(Some(60), None), Some(&s), &ON, t(1)),
            Err(UnboostBlock::NotExpired)
        );
        assert_eq!(
            can_unboost(&p, &v, None, &ON, t(1)),
            Err(UnboostBlock::NotInReplicaGroup)
        );
        let mut resizing = p.clone();
        resizing.conditions.push(PodCondition {
            kind: PodConditionType::PodResizeInProgress,
            is_true: true,
            reason: String::new(),
            message: String::new(),
            last_transition: None,
        });
        assert_eq!(
            can_unboost(&resizing, &v, Some(&s), &ON, t(1)),
            Err(UnboostBlock::Resizing)
        );
        let exhausted = GroupStats {
            in_place_update_initiated: 1,
            ..s
        };
        assert_eq!(
            can_unboost(&p, &v, Some(&exhausted), &ON, t(1)),
            Err(UnboostBlock::DisruptionBudget)
        );
    }
}
