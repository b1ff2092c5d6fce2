//! In-place decisions, the fallback rules and the per-pod tracker.

use super::*;
use crate::settings::FeatureGates;
use crate::testutil::*;
use crate::view::{PodCondition, PodPhase, ResizePolicy};

fn resizing(kind: PodConditionType, reason: &str, message: &str) -> PodView {
    let mut p = simple("p", cpu(1000), cpu(2000));
    p.conditions.push(condition(kind, reason, message));
    p
}

fn stats(disruptable: bool) -> GroupStats {
    GroupStats {
        configured: 3,
        running: 3,
        eviction_tolerance: 1,
        evicted: if disruptable { 0 } else { 1 },
        ..Default::default()
    }
}

fn gates_in_place() -> UpdaterSettings {
    UpdaterSettings {
        gates: FeatureGates {
            in_place: true,
            ..Default::default()
        },
        ..UpdaterSettings::default()
    }
}

use PodConditionType::{PodResizeInProgress as InProgress, PodResizePending as Pending};

#[test]
fn resize_status_from_conditions() {
    assert_eq!(
        resize_status(&simple("p", cpu(1), cpu(1))),
        ResizeStatus::None
    );
    assert_eq!(
        resize_status(&resizing(Pending, "Deferred", "")),
        ResizeStatus::Deferred
    );
    assert_eq!(
        resize_status(&resizing(Pending, "Infeasible", "")),
        ResizeStatus::Infeasible
    );
    assert_eq!(
        resize_status(&resizing(Pending, "Other", "")),
        ResizeStatus::Unknown
    );
    assert_eq!(
        resize_status(&resizing(InProgress, "", "")),
        ResizeStatus::InProgress
    );
    assert_eq!(
        resize_status(&resizing(InProgress, "Error", "oops")),
        ResizeStatus::Error
    );
    assert_eq!(
        resize_status(&resizing(InProgress, "Other", "")),
        ResizeStatus::Unknown
    );
    let mut not_true = resizing(Pending, "Deferred", "");
    for c in &mut not_true.conditions {
        c.is_true = false;
    }
    assert_eq!(resize_status(&not_true), ResizeStatus::None);
    assert!(!is_in_place_updating(&not_true));
}

#[test]
fn in_place_updating_reads_the_first_resize_condition() {
    let mut p = resizing(Pending, "Deferred", "");
    assert!(is_in_place_updating(&p));
    p.conditions.insert(
        0,
        PodCondition {
            is_true: false,
            ..condition(InProgress, "", "")
        },
    );
    assert!(!is_in_place_updating(&p));
}

#[test]
fn infeasible_falls_back_at_once() {
    let mut t = InPlaceTracker::new();
    let p = resizing(Pending, "Infeasible", "");
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, now()),
        Some(FallbackCause::Infeasible)
    );
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(false), &mut t, now()),
        None
    );
}

#[test]
fn deferred_falls_back_after_five_minutes_from_first_sight() {
    let mut t = InPlaceTracker::new();
    let p = resizing(Pending, "Deferred", "");
    // First seen while the group cannot be disrupted: the clock starts anyway.
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(false), &mut t, now()),
        None
    );
    assert_eq!(t.state(&p.uid).and_then(|s| s.resizing_since), Some(now()));
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, at(300)),
        None
    );
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, at(301)),
        Some(FallbackCause::DeferredTooLong)
    );
}

#[test]
fn in_progress_falls_back_after_an_hour() {
    let mut t = InPlaceTracker::new();
    let p = resizing(InProgress, "", "");
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, now()),
        None
    );
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, at(3600)),
        None
    );
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, at(3601)),
        Some(FallbackCause::InProgressTooLong)
    );
}

#[test]
fn errors_and_unexpected_reasons_fall_back_at_once() {
    let mut t = InPlaceTracker::new();
    for (p, cause) in [
        (
            resizing(InProgress, "Error", "boom"),
            FallbackCause::ResizeError,
        ),
        (
            resizing(InProgress, "Other", ""),
            FallbackCause::UnexpectedInProgress,
        ),
        (
            resizing(InProgress, "", "a message"),
            FallbackCause::UnexpectedInProgress,
        ),
        (
            resizing(Pending, "Other", ""),
            FallbackCause::UnexpectedPending,
        ),
    ] {
        assert_eq!(
            can_evict_in_placing_pod(&p, &stats(true), &mut t, now()),
            Some(cause)
        );
    }
    let idle = simple("q", cpu(1), cpu(1));
    assert_eq!(
        can_evict_in_placing_pod(&idle, &stats(true), &mut t, now()),
        None
    );
    assert!(t.state(&idle.uid).is_none());
}

#[test]
fn tracker_restarts_the_clock_for_a_new_resize_and_forgets_gone_pods() {
    let mut t = InPlaceTracker::new();
    let p = resizing(InProgress, "", "");
    assert_eq!(t.resize_seen(&p, now()), now());
    assert_eq!(t.resize_seen(&p, at(10)), now());
    t.begin_loop([&p]);
    assert_eq!(t.resize_seen(&p, at(20)), now());
    // Seen not resizing: the clock stops; the next resize starts a new one.
    let done = simple("p", cpu(1000), cpu(2000));
    t.begin_loop([&done]);
    assert!(t.is_empty());
    assert_eq!(t.resize_seen(&p, at(7200)), at(7200));
    assert_eq!(
        can_evict_in_placing_pod(&p, &stats(true), &mut t, at(7300)),
        None
    );
    // Infeasible attempts survive while the pod lives, and go with it.
    t.record_infeasible(&p.uid, vec![]);
    assert_eq!(t.len(), 1);
    t.begin_loop([&done]);
    assert!(t.infeasible_attempt(&p.uid).is_some());
    t.begin_loop(std::iter::empty());
    assert!(t.is_empty());
}

#[test]
fn lower_target_means_any_common_resource_is_lower() {
    let last = vec![ContainerTarget {
        container_name: "app".into(),
        target: res(1000, 100),
    }];
    let t = |r: Resources| {
        vec![ContainerTarget {
            container_name: "app".into(),
            target: r,
        }]
    };
    let check = |new: Vec<ContainerTarget>| {
        has_lower_target(
            &last,
            new.iter().map(|r| (r.container_name.as_str(), &r.target)),
        )
    };
    assert!(!check(t(res(1000, 100))));
    assert!(!check(t(res(2000, 200))));
    assert!(check(t(res(999, 200))));
    assert!(check(t(res(2000, 99))));
    assert!(check(t(cpu(10))));
    let other = vec![ContainerTarget {
        container_name: "side".into(),
        target: res(1, 1),
    }];
    assert!(!check(other));
    assert!(!has_lower_target(
        &[],
        last.iter().map(|r| (r.container_name.as_str(), &r.target))
    ));
}

fn decide(
    vpa: &VpaView,
    p: &PodView,
    s: Option<&GroupStats>,
    settings: &UpdaterSettings,
    t: &mut InPlaceTracker,
) -> InPlaceDecision {
    can_in_place_update(vpa, p, s, settings, t, now())
}

#[test]
fn preconditions_defer() {
    let mut t = InPlaceTracker::new();
    let ok = stats(true);
    let p = simple("p", cpu(1000), cpu(2000));
    let in_place = vpa(UpdateMode::InPlace);
    let ior = vpa(UpdateMode::InPlaceOrRecreate);
    let off = UpdaterSettings::default();
    assert_eq!(
        decide(&in_place, &p, Some(&ok), &off, &mut t),
        InPlaceDecision::Deferred(DeferCause::InPlaceGateOff)
    );
    assert_eq!(
        decide(&vpa(UpdateMode::Recreate), &p, Some(&ok), &off, &mut t),
        InPlaceDecision::Evict(FallbackCause::NotInPlaceMode)
    );
    assert_eq!(
        decide(&ior, &p, None, &off, &mut t),
        InPlaceDecision::Deferred(DeferCause::NotInReplicaGroup)
    );
    let mut pending = p.clone();
    pending.phase = PodPhase::Pending;
    assert_eq!(
        decide(&ior, &pending, Some(&ok), &off, &mut t),
        InPlaceDecision::Deferred(DeferCause::Pending)
    );
    let mut no_rec = ior.clone();
    no_rec.recommendation = None;
    assert_eq!(
        decide(&no_rec, &p, Some(&ok), &off, &mut t),
        InPlaceDecision::Deferred(DeferCause::NoRecommendation)
    );
    assert_eq!(
        decide(&ior, &p, Some(&ok), &off, &mut t),
        InPlaceDecision::Approved
    );
    assert_eq!(
        decide(&ior, &p, Some(&stats(false)), &off, &mut t),
        InPlaceDecision::Deferred(DeferCause::DisruptionBudget)
    );
}

#[test]
fn in_place_mode_waits_for_the_kubelet_and_never_evicts() {
    let mut t = InPlaceTracker::new();
    let s = gates_in_place();
    let v = vpa(UpdateMode::InPlace);
    let ok = stats(true);
    assert_eq!(
        decide(
            &v,
            &resizing(Pending, "Infeasible", ""),
            Some(&ok),
            &s,
            &mut t
        ),
        InPlaceDecision::Infeasible
    );
    for p in [
        resizing(Pending, "Deferred", ""),
        resizing(InProgress, "", ""),
        resizing(Pending, "Other", ""),
        resizing(InProgress, "Other", "x"),
    ] {
        assert!(matches!(
            decide(&v, &p, Some(&ok), &s, &mut t),
            InPlaceDecision::Deferred(DeferCause::Resizing(_))
        ));
    }
    assert!(t.is_empty(), "InPlace mode never starts a fallback clock");
}

#[test]
fn transient_kubelet_error_is_not_infeasible() {
    // Upstream #10093: a kubelet Error during the resize is deferred, never cached.
    let mut t = InPlaceTracker::new();
    let p = resizing(
        InProgress,
        "Error",
        "cannot decrease memory limits: missing container \"app\" memory usage",
    );
    assert_eq!(
        decide(
            &vpa(UpdateMode::InPlace),
            &p,
            Some(&stats(true)),
            &gates_in_place(),
            &mut t
        ),
        InPlaceDecision::Deferred(DeferCause::Resizing(ResizeStatus::Error))
    );
    assert!(t.infeasible_attempt(&p.uid).is_none());
}

#[test]
fn cached_infeasible_attempt_until_a_lower_recommendation() {
    let mut t = InPlaceTracker::new();
    let s = gates_in_place();
    let mut v = vpa(UpdateMode::InPlace);
    let p = simple("p", cpu(1000), cpu(2000));
    let rec = v.recommendation.clone().unwrap_or_default();
    t.record_infeasible(&p.uid, rec);
    assert_eq!(
        decide(&v, &p, Some(&stats(true)), &s, &mut t),
        InPlaceDecision::InfeasibleCached
    );
    // Higher is still cached.
    v.recommendation = Some(vec![ContainerTarget {
        container_name: "app".into(),
        target: res(5000, 5000 * MB),
    }]);
    assert_eq!(
        decide(&v, &p, Some(&stats(true)), &s, &mut t),
        InPlaceDecision::InfeasibleCached
    );
    v.recommendation = Some(vec![ContainerTarget {
        container_name: "app".into(),
        target: res(500, 5000 * MB),
    }]);
    assert_eq!(
        decide(&v, &p, Some(&stats(true)), &s, &mut t),
        InPlaceDecision::Approved
    );
    // InPlaceOrRecreate ignores the cache.
    let mut ior = vpa(UpdateMode::InPlaceOrRecreate);
    ior.recommendation = Some(
        t.infeasible_attempt(&p.uid)
            .map(<[ContainerTarget]>::to_vec)
            .unwrap_or_default(),
    );
    assert_eq!(
        decide(&ior, &p, Some(&stats(true)), &s, &mut t),
        InPlaceDecision::Approved
    );
}

#[test]
fn in_place_or_recreate_falls_back_when_resizing() {
    let mut t = InPlaceTracker::new();
    let v = vpa(UpdateMode::InPlaceOrRecreate);
    let s = UpdaterSettings::default();
    assert_eq!(
        decide(
            &v,
            &resizing(Pending, "Infeasible", ""),
            Some(&stats(true)),
            &s,
            &mut t
        ),
        InPlaceDecision::Evict(FallbackCause::Infeasible)
    );
    assert_eq!(
        decide(
            &v,
            &resizing(Pending, "Infeasible", ""),
            Some(&stats(false)),
            &s,
            &mut t
        ),
        InPlaceDecision::Deferred(DeferCause::Resizing(ResizeStatus::Infeasible))
    );
    assert_eq!(
        decide(
            &v,
            &resizing(InProgress, "", ""),
            Some(&stats(true)),
            &s,
            &mut t
        ),
        InPlaceDecision::Deferred(DeferCause::Resizing(ResizeStatus::InProgress))
    );
}

#[test]
fn skip_disruption_budget_needs_a_non_disruptive_resize() {
    let mut t = InPlaceTracker::new();
    let v = vpa(UpdateMode::InPlaceOrRecreate);
    let s = UpdaterSettings {
        in_place_skip_disruption_budget: true,
        ..UpdaterSettings::default()
    };
    let p = simple("p", cpu(1000), cpu(2000));
    assert_eq!(
        decide(&v, &p, Some(&stats(false)), &s, &mut t),
        InPlaceDecision::Approved
    );
    let mut restart = p.clone();
    if let Some(c) = restart.containers.first_mut() {
        c.resize_policy = ResizePolicy {
            cpu: RestartPolicy::NotRequired,
            memory: RestartPolicy::RestartContainer,
        };
    }
    assert!(!is_non_disruptive_resize(&restart));
    assert_eq!(
        decide(&v, &restart, Some(&stats(false)), &s, &mut t),
        InPlaceDecision::Deferred(DeferCause::DisruptionBudget)
    );
    assert_eq!(
        decide(&v, &restart, Some(&stats(true)), &s, &mut t),
        InPlaceDecision::Approved
    );
}

#[test]
fn node_capacity_rejections_are_infeasible() {
    assert!(is_infeasible_rejection("Forbidden", ["NodeCapacity"]));
    assert!(!is_infeasible_rejection(
        "Forbidden",
        ["UnsupportedPlatform"]
    ));
    assert!(!is_infeasible_rejection("Invalid", ["NodeCapacity"]));
    assert!(!is_infeasible_rejection("Forbidden", []));
}

fn cr(requests: Resources, limits: Resources) -> ContainerResources {
    ContainerResources { requests, limits }
}

#[test]
fn qos_classes() {
    let none = Resources::default();
    assert_eq!(qos_class([&cr(none, none)]), QosClass::BestEffort);
    assert_eq!(qos_class([&cr(res(0, 0), none)]), QosClass::BestEffort);
    assert_eq!(qos_class([&cr(cpu(100), none)]), QosClass::Burstable);
    assert_eq!(
        qos_class([&cr(res(100, 10), res(100, 10))]),
        QosClass::Guaranteed
    );
    assert_eq!(
        qos_class([&cr(res(100, 10), res(200, 10))]),
        QosClass::Burstable
    );
    assert_eq!(
        qos_class([&cr(res(100, 10), res(100, 10)), &cr(none, none)]),
        QosClass::Burstable
    );
    assert_eq!(
        qos_class([&cr(res(100, 10), res(100, 10)), &cr(res(5, 5), res(5, 5))]),
        QosClass::Guaranteed
    );
    // Limits only count for Guaranteed when both are set (requests default from limits in
    // the API, but a view may lack them).
    assert_eq!(qos_class([&cr(none, res(100, 10))]), QosClass::Burstable);
    assert_eq!(qos_class([&cr(cpu(100), cpu(100))]), QosClass::Burstable);
}

#[test]
fn rejected_resize_causes() {
    let mut p = pod("p");
    p.containers.push(crate::view::ContainerView {
        name: "app".into(),
        spec: cr(res(100, 100 * MB), res(100, 100 * MB)),
        ..Default::default()
    });
    // Guaranteed → Burstable.
    let burstable = cr(res(200, 100 * MB), Resources::default());
    assert_eq!(
        likely_rejection(&p, [(0, &burstable)]),
        RejectionCause::QosClassChange
    );
    // Still Guaranteed, memory limit lowered with NotRequired.
    let smaller = cr(res(100, 50 * MB), res(100, 50 * MB));
    assert_eq!(
        likely_rejection(&p, [(0, &smaller)]),
        RejectionCause::MemoryLimitDecrease
    );
    if let Some(c) = p.containers.first_mut() {
        c.resize_policy.memory = RestartPolicy::RestartContainer;
    }
    assert_eq!(likely_rejection(&p, [(0, &smaller)]), RejectionCause::Other);
    let bigger = cr(res(200, 200 * MB), res(200, 200 * MB));
    assert_eq!(likely_rejection(&p, [(0, &bigger)]), RejectionCause::Other);
    assert_eq!(
        resources_after(&p, [(0, &cr(cpu(300), Resources::default()))])
            .first()
            .map(|r| r.requests),
        Some(res(300, 100 * MB))
    );
}
