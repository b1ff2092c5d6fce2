//! Conformance vectors 152–155 (upstream `pods_eviction_restriction_test.go`) and the
//! replica-group rules.

use super::*;
use crate::testutil::*;
use crate::view::{PodConditionType, PodPhase};

fn pods(n: usize) -> Vec<PodView> {
    (0..n).map(|i| pod(&format!("pod-{i}"))).collect()
}

fn settings(min_replicas: i64, tolerance: f64) -> UpdaterSettings {
    UpdaterSettings {
        min_replicas,
        eviction_tolerance: tolerance,
        ..UpdaterSettings::default()
    }
}

/// Evicts the pods in order while allowed; the number evicted.
fn evict_all(groups: &mut ReplicaGroups, pods: &[PodView]) -> usize {
    let mut tracker = InPlaceTracker::new();
    let mut n = 0;
    for (i, p) in pods.iter().enumerate() {
        if groups.can_evict(i, p, &mut tracker, now()).is_ok() {
            groups.record_evicted(i, p.is_pending());
            n += 1;
        }
    }
    n
}

#[test]
fn vector_152_too_few_replicas() {
    let pods = pods(5);
    let vpa = vpa(UpdateMode::Recreate);
    let groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 5)], &settings(10, 0.5));
    let mut tracker = InPlaceTracker::new();
    for (i, p) in pods.iter().enumerate() {
        assert_eq!(
            groups.can_evict(i, p, &mut tracker, now()),
            Err(EvictBlock::NotInGroup(Membership::TooFewReplicas {
                live: 5,
                required: 10
            }))
        );
    }
    assert_eq!(groups.groups().count(), 0);
}

#[test]
fn vector_153_eviction_tolerance() {
    let pods = pods(5);
    let vpa = vpa(UpdateMode::Recreate);
    let mut groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 5)], &settings(2, 0.8));
    assert_eq!(evict_all(&mut groups, &pods), 4);
}

#[test]
fn vector_154_evict_at_least_one() {
    let pods = pods(5);
    let vpa = vpa(UpdateMode::Recreate);
    let mut groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 5)], &settings(2, 0.1));
    assert_eq!(evict_all(&mut groups, &pods), 1);
}

#[test]
fn vector_155_pending_pods_are_always_evictable() {
    let mut pods = pods(4);
    for p in pods.iter_mut().take(2) {
        p.phase = PodPhase::Pending;
    }
    let vpa = vpa(UpdateMode::Recreate);
    let mut groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 4)], &settings(2, 0.5));
    let stats = groups.stats_of(0).copied();
    assert_eq!(
        stats.map(|s| (s.pending, s.running, s.eviction_tolerance)),
        Some((2, 2, 2))
    );
    // The two pending pods go, the running ones may not (2 alive is not above 4 - 2).
    assert_eq!(evict_all(&mut groups, &pods), 2);
    assert_eq!(groups.stats_of(0).map(|s| s.evicted), Some(0));
}

#[test]
fn per_vpa_min_replicas_overrides_the_flag() {
    let pods = pods(2);
    let mut vpa = vpa(UpdateMode::Recreate);
    vpa.min_replicas = Some(3);
    let groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 2)], &settings(1, 0.5));
    assert_eq!(
        groups.membership(0),
        Membership::TooFewReplicas {
            live: 2,
            required: 3
        }
    );
    vpa.min_replicas = Some(1);
    let groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 2)], &settings(5, 0.5));
    assert_eq!(groups.membership(1), Membership::Group(0));
}

#[test]
fn boosted_pod_keeps_a_small_group() {
    let mut pods = pods(1);
    if let Some(p) = pods.first_mut() {
        p.boosted_containers.push("app".into());
    }
    let vpa = vpa(UpdateMode::Recreate);
    let groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 1)], &settings(2, 0.5));
    assert_eq!(groups.membership(0), Membership::Group(0));
    assert_eq!(
        groups.stats_of(0).map(|s| s.below_min_replicas),
        Some(false)
    );
}

#[test]
fn skip_disruption_budget_keeps_small_in_place_groups_without_evictions() {
    let pods = pods(1);
    let s = UpdaterSettings {
        in_place_skip_disruption_budget: true,
        ..settings(2, 0.5)
    };
    let mut tracker = InPlaceTracker::new();
    for mode in [UpdateMode::InPlaceOrRecreate, UpdateMode::InPlace] {
        let groups = ReplicaGroups::build(&vpa(mode), &pods, &[replicas("rs", 1)], &s);
        assert_eq!(groups.stats_of(0).map(|s| s.below_min_replicas), Some(true));
        let p = pods.first().cloned().unwrap_or_default();
        assert_eq!(
            groups.can_evict(0, &p, &mut tracker, now()),
            Err(EvictBlock::BelowMinReplicas)
        );
    }
    let groups = ReplicaGroups::build(&vpa(UpdateMode::Recreate), &pods, &[replicas("rs", 1)], &s);
    assert!(matches!(
        groups.membership(0),
        Membership::TooFewReplicas { .. }
    ));
}

#[test]
fn replica_counts_by_owner_kind() {
    use OwnerKind::*;
    for kind in [ReplicationController, ReplicaSet, StatefulSet] {
        assert_eq!(configured_replicas(kind, Some(3), 9), Ok(3));
        assert_eq!(
            configured_replicas(kind, Some(0), 9),
            Err(ReplicaCountError::NoReplicas)
        );
        assert_eq!(
            configured_replicas(kind, None, 9),
            Err(ReplicaCountError::NoReplicas)
        );
    }
    assert_eq!(configured_replicas(DaemonSet, Some(4), 9), Ok(4));
    assert_eq!(
        configured_replicas(DaemonSet, Some(0), 9),
        Err(ReplicaCountError::NoReadyPods)
    );
    assert_eq!(configured_replicas(Job, None, 9), Ok(9));
    assert_eq!(configured_replicas(Other, Some(5), 9), Ok(0));
}

#[test]
fn groups_by_owner_and_unknown_counts() {
    let mut pods = pods(6);
    for (i, p) in pods.iter_mut().enumerate() {
        p.owner = match i % 3 {
            0 => Some(owner("a")),
            1 => Some(crate::view::OwnerRef {
                kind: "Job".into(),
                name: "j".into(),
            }),
            _ => None,
        };
    }
    let vpa = vpa(UpdateMode::Recreate);
    let groups = ReplicaGroups::build(&vpa, &pods, &[], &settings(2, 0.5));
    assert_eq!(
        groups.membership(0),
        Membership::ReplicasUnknown(ReplicaCountError::NoReplicas)
    );
    assert_eq!(groups.membership(1), Membership::Group(0));
    assert_eq!(groups.membership(2), Membership::NoController);
    assert_eq!(groups.stats_of(4).map(|s| s.configured), Some(2));
}

#[test]
fn tolerance_truncates() {
    assert_eq!(tolerance(5, 0.5), 2);
    assert_eq!(tolerance(3, 0.99), 2);
    assert_eq!(tolerance(3, f64::NAN), 0);
}

#[test]
fn disruptable_rule() {
    let s = GroupStats {
        configured: 3,
        running: 3,
        ..Default::default()
    };
    // Tolerance zero with everything running: exactly one.
    assert!(s.is_pod_disruptable());
    assert!(!GroupStats { evicted: 1, ..s }.is_pod_disruptable());
    assert!(
        !GroupStats {
            in_place_update_initiated: 1,
            ..s
        }
        .is_pod_disruptable()
    );
    // One pod missing and tolerance zero: none.
    assert!(!GroupStats { running: 2, ..s }.is_pod_disruptable());
    // More running than configured (a rollout surge) allows more.
    assert!(
        GroupStats {
            running: 5,
            evicted: 1,
            ..s
        }
        .is_pod_disruptable()
    );
}

#[test]
fn resizing_pods_follow_the_fallback_rules() {
    let mut pods = pods(3);
    if let Some(p) = pods.first_mut() {
        p.conditions.push(condition(
            PodConditionType::PodResizePending,
            "Deferred",
            "",
        ));
    }
    let vpa = vpa(UpdateMode::Recreate);
    let groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 3)], &settings(2, 0.5));
    let mut tracker = InPlaceTracker::new();
    let p = pods.first().cloned().unwrap_or_default();
    assert_eq!(
        groups.can_evict(0, &p, &mut tracker, now()),
        Err(EvictBlock::ResizeInProgress)
    );
    assert_eq!(
        groups.stats_of(0).map(|s| s.in_place_update_ongoing),
        Some(1)
    );
    assert_eq!(
        groups.can_evict(0, &p, &mut tracker, at(5 * 60)),
        Err(EvictBlock::ResizeInProgress)
    );
    assert_eq!(
        groups.can_evict(0, &p, &mut tracker, at(5 * 60 + 1)),
        Ok(())
    );
}

#[test]
fn in_place_updates_use_the_same_budget() {
    let pods = pods(4);
    let vpa = vpa(UpdateMode::InPlaceOrRecreate);
    let mut groups = ReplicaGroups::build(&vpa, &pods, &[replicas("rs", 4)], &settings(2, 0.5));
    groups.record_in_place(0);
    groups.record_in_place(1);
    let mut tracker = InPlaceTracker::new();
    let p = pods.get(2).cloned().unwrap_or_default();
    assert_eq!(
        groups.can_evict(2, &p, &mut tracker, now()),
        Err(EvictBlock::DisruptionBudget)
    );
}
