//! Whole-round scenarios and property tests of the plan.

use super::*;
use crate::in_place::InPlaceTracker;
use crate::settings::FeatureGates;
use crate::testutil::*;
use crate::view::{
    ChangeRequirement, ContainerTarget, EvictionRequirement, PodCondition, PodConditionType,
    PodPhase, StartupBoostView,
};
use vpa_core::model::{ResourceKind, Resources};
use vpa_core::time::Duration;

fn input(mode: UpdateMode, pods: Vec<PodView>, n: i32) -> VpaInput {
    VpaInput {
        vpa: vpa(mode),
        pods,
        owners: vec![replicas("rs", n)],
    }
}

/// A compact description of an action.
fn describe(a: &Action<'_>) -> String {
    match a {
        Action::Evict { pod, reason, .. } => format!("evict {} {reason:?}", pod.name),
        Action::ResizeInPlace { pod, reason, .. } => format!("resize {} {reason:?}", pod.name),
        Action::Skip { pod, why } => format!("skip {} {why:?}", pod.name),
    }
}

fn plan(input: &VpaInput, settings: &UpdaterSettings, tracker: &mut InPlaceTracker) -> Vec<String> {
    plan_vpa(input, settings, tracker, now())
        .actions
        .iter()
        .map(describe)
        .collect()
}

fn in_place_gate() -> UpdaterSettings {
    UpdaterSettings {
        gates: FeatureGates {
            in_place: true,
            ..Default::default()
        },
        ..UpdaterSettings::default()
    }
}

const LONG: &str = "Update(LongLivedDifference)";

#[test]
fn recreate_evicts_in_priority_order_within_the_tolerance() {
    let pods = vec![
        simple("p0", cpu(1000), cpu(2000)),
        simple("p1", cpu(1000), cpu(5000)),
        simple("p2", cpu(1000), cpu(3000)),
        simple("p3", cpu(1000), cpu(1500)),
    ];
    let i = input(UpdateMode::Recreate, pods, 4);
    let p = plan_vpa(
        &i,
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
        now(),
    );
    let got: Vec<String> = p.actions.iter().map(describe).collect();
    assert_eq!(
        got,
        [
            format!("evict p1 {LONG}"),
            format!("evict p2 {LONG}"),
            "skip p0 NotEvictable(DisruptionBudget)".to_string(),
            "skip p3 NotEvictable(DisruptionBudget)".to_string(),
        ]
    );
    assert_eq!(
        p.counts,
        RoundCounts {
            controlled: 4,
            evictable: 4,
            in_place_updatable: 0
        }
    );
    let Some(Action::Evict { changes, .. }) = p.actions.first() else {
        panic!("expected an eviction first");
    };
    assert_eq!(
        changes,
        &vec![ContainerChange {
            container_name: "app".into(),
            requests: cpu(1000),
            target: cpu(5000),
        }]
    );
}

#[test]
fn auto_behaves_as_recreate() {
    let pods = vec![
        simple("a", cpu(1000), cpu(2000)),
        simple("b", cpu(1000), cpu(3000)),
    ];
    let mut t = InPlaceTracker::new();
    let recreate = plan(
        &input(UpdateMode::Recreate, pods.clone(), 2),
        &UpdaterSettings::default(),
        &mut t,
    );
    let auto = plan(
        &input(UpdateMode::Auto, pods, 2),
        &UpdaterSettings::default(),
        &mut t,
    );
    assert_eq!(recreate, auto);
    assert_eq!(recreate.len(), 2);
}

#[test]
fn a_failed_eviction_does_not_use_the_budget() {
    let pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(3000)),
    ];
    let i = input(UpdateMode::Recreate, pods, 2);
    let settings = UpdaterSettings::default();
    let mut t = InPlaceTracker::new();
    let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
    let first = round.next(&mut t).map(|a| describe(&a));
    assert_eq!(first, Some(format!("evict a {LONG}")));
    round.report(Outcome::Failed { infeasible: false }, &mut t);
    assert_eq!(
        round.next(&mut t).map(|a| describe(&a)),
        Some(format!("evict b {LONG}"))
    );
    round.report(Outcome::Succeeded, &mut t);
    assert_eq!(round.next(&mut t), None);
    assert_eq!(
        round.groups().groups().map(|(_, s)| s.evicted).sum::<i64>(),
        1
    );
}

#[test]
fn pending_pods_are_evicted_without_using_the_budget() {
    let mut pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(4000)),
        simple("c", cpu(1000), cpu(3000)),
        simple("d", cpu(1000), cpu(1000)),
    ];
    if let Some(p) = pods.first_mut() {
        p.phase = PodPhase::Pending;
    }
    // 4 live pods, 3 running, 3 configured, tolerance 1.
    let got = plan(
        &input(UpdateMode::Recreate, pods, 3),
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(
        got,
        [
            format!("evict a {LONG}"),
            format!("evict b {LONG}"),
            "skip c NotEvictable(DisruptionBudget)".into()
        ]
    );
}

#[test]
fn pods_at_their_target_give_an_empty_plan() {
    let pods = vec![
        simple("a", cpu(1000), cpu(1000)),
        simple("b", res(100, MB), res(100, MB)),
    ];
    for mode in [
        UpdateMode::Recreate,
        UpdateMode::InPlaceOrRecreate,
        UpdateMode::InPlace,
    ] {
        assert!(
            plan(
                &input(mode, pods.clone(), 2),
                &in_place_gate(),
                &mut InPlaceTracker::new()
            )
            .is_empty()
        );
    }
}

#[test]
fn off_and_initial_do_nothing() {
    let pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(3000)),
    ];
    for mode in [UpdateMode::Off, UpdateMode::Initial] {
        assert!(
            plan(
                &input(mode, pods.clone(), 2),
                &UpdaterSettings::default(),
                &mut InPlaceTracker::new()
            )
            .is_empty()
        );
    }
}

#[test]
fn in_place_without_its_gate_does_nothing() {
    let pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(3000)),
    ];
    assert!(
        plan(
            &input(UpdateMode::InPlace, pods, 2),
            &UpdaterSettings::default(),
            &mut InPlaceTracker::new()
        )
        .is_empty()
    );
}

#[test]
fn too_few_replicas_blocks_every_update() {
    let pods = vec![simple("a", cpu(1000), cpu(5000))];
    let got = plan(
        &input(UpdateMode::Recreate, pods, 1),
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(
        got,
        ["skip a NotEvictable(NotInGroup(TooFewReplicas { live: 1, required: 2 }))"]
    );
}

#[test]
fn eviction_requirements_filter_the_order() {
    let pods = vec![
        simple("up", cpu(1000), cpu(5000)),
        simple("down", cpu(5000), cpu(1000)),
    ];
    let mut i = input(UpdateMode::Recreate, pods, 2);
    i.vpa.eviction_requirements = Some(vec![EvictionRequirement {
        resources: vec![Some(ResourceKind::Cpu)],
        change: ChangeRequirement::TargetLowerThanRequests,
    }]);
    // A container without a memory request is always admitted: give them memory.
    for p in &mut i.pods {
        for c in &mut p.containers {
            c.spec.requests.memory = Some(MB);
        }
    }
    let got = plan(&i, &UpdaterSettings::default(), &mut InPlaceTracker::new());
    assert_eq!(
        got,
        [
            format!("evict down {LONG}"),
            "skip up EvictionRequirements".into()
        ]
    );
}

#[test]
fn in_place_or_recreate_resizes_and_falls_back_to_eviction() {
    let pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(3000)),
        simple("c", cpu(1000), cpu(1000)),
    ];
    let i = input(UpdateMode::InPlaceOrRecreate, pods, 3);
    let settings = UpdaterSettings::default();
    let mut t = InPlaceTracker::new();
    let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
    let Some(Action::ResizeInPlace { pod, patch, .. }) = round.next(&mut t) else {
        panic!("expected a resize");
    };
    assert_eq!(pod.name, "a");
    assert_eq!(patch.containers.len(), 1);
    assert_eq!(
        patch.containers.first().map(|c| c.resources.requests),
        Some(cpu(5000))
    );
    round.report(Outcome::Failed { infeasible: false }, &mut t);
    // The failed resize did not use the budget: b is resized.
    assert_eq!(
        round.next(&mut t).map(|a| describe(&a)),
        Some(format!("resize b {LONG}"))
    );
    // b's resize did: a's fallback eviction must wait.
    assert_eq!(
        round.next(&mut t).map(|a| describe(&a)),
        Some("skip a NotEvictable(DisruptionBudget)".into())
    );
    assert_eq!(round.next(&mut t), None);
    assert_eq!(round.counts().in_place_updatable, 2);
}

#[test]
fn a_rejected_resize_is_evicted_with_its_likely_cause() {
    let mut p = simple("a", res(1000, 100 * MB), res(2000, 100 * MB));
    if let Some(c) = p.containers.first_mut() {
        // Guaranteed now; the new resources have no limits: Burstable.
        c.spec.limits = res(1000, 100 * MB);
    }
    let i = input(
        UpdateMode::InPlaceOrRecreate,
        vec![p, simple("b", cpu(1), cpu(1))],
        2,
    );
    let settings = UpdaterSettings::default();
    let mut t = InPlaceTracker::new();
    let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
    assert!(matches!(
        round.next(&mut t),
        Some(Action::ResizeInPlace { .. })
    ));
    round.report(Outcome::Failed { infeasible: false }, &mut t);
    assert_eq!(
        round.next(&mut t).map(|a| describe(&a)),
        Some("evict a InPlaceFallback(Rejected(QosClassChange))".into())
    );
    assert_eq!(round.next(&mut t), None);
}

#[test]
fn in_place_or_recreate_defers_over_budget_and_evicts_stalled_resizes() {
    let mut stalled = simple("stalled", cpu(1000), cpu(9000));
    stalled.conditions.push(condition(
        PodConditionType::PodResizePending,
        "Infeasible",
        "",
    ));
    let pods = vec![
        stalled,
        simple("b", cpu(1000), cpu(5000)),
        simple("c", cpu(1000), cpu(3000)),
    ];
    let got = plan(
        &input(UpdateMode::InPlaceOrRecreate, pods, 3),
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(
        got,
        [
            "resize b Update(LongLivedDifference)".to_string(),
            "skip c InPlaceDeferred(DisruptionBudget)".into(),
            // Evaluated first (highest priority) it went to the eviction list, but b's resize
            // used the budget by the time the eviction list runs.
            "skip stalled NotEvictable(ResizeInProgress)".into(),
        ]
    );
    let alone = vec![
        {
            let mut s = simple("stalled", cpu(1000), cpu(9000));
            s.conditions.push(condition(
                PodConditionType::PodResizePending,
                "Infeasible",
                "",
            ));
            s
        },
        simple("ok", cpu(1), cpu(1)),
        simple("ok2", cpu(1), cpu(1)),
    ];
    let got = plan(
        &input(UpdateMode::InPlaceOrRecreate, alone, 3),
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(got, ["evict stalled InPlaceFallback(Infeasible)"]);
}

#[test]
fn in_place_records_node_capacity_rejections_until_a_lower_recommendation() {
    let settings = in_place_gate();
    let mut t = InPlaceTracker::new();
    let mut i = input(
        UpdateMode::InPlace,
        vec![
            simple("a", cpu(1000), cpu(5000)),
            simple("b", cpu(1), cpu(1)),
        ],
        2,
    );
    i.vpa.recommendation = Some(vec![ContainerTarget {
        container_name: "app".into(),
        target: cpu(5000),
    }]);
    {
        let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
        assert_eq!(
            round.next(&mut t).map(|a| describe(&a)),
            Some(format!("resize a {LONG}"))
        );
        round.report(Outcome::Failed { infeasible: true }, &mut t);
        assert_eq!(round.next(&mut t), None);
    }
    assert!(t.infeasible_attempt("uid-a").is_some());
    // Same recommendation next loop: skipped (upstream event InPlaceResizeSkipped).
    let got: Vec<String> = plan_loop(std::slice::from_ref(&i), &settings, &mut t, now())
        .iter()
        .flat_map(|p| p.actions.iter().map(describe))
        .collect();
    assert_eq!(got, ["skip a InfeasibleCached"]);
    // A lower recommendation retries.
    i.vpa.recommendation = Some(vec![ContainerTarget {
        container_name: "app".into(),
        target: cpu(4000),
    }]);
    if let Some(r) = i
        .pods
        .first_mut()
        .and_then(|p| p.recommendation.first_mut())
    {
        r.recommended.target = cpu(4000);
    }
    assert_eq!(plan(&i, &settings, &mut t), [format!("resize a {LONG}")]);
}

#[test]
fn in_place_never_caches_a_transient_failure() {
    let settings = in_place_gate();
    let mut t = InPlaceTracker::new();
    let i = input(
        UpdateMode::InPlace,
        vec![
            simple("a", cpu(1000), cpu(5000)),
            simple("b", cpu(1), cpu(1)),
        ],
        2,
    );
    let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
    assert!(round.next(&mut t).is_some());
    round.report(Outcome::Failed { infeasible: false }, &mut t);
    assert_eq!(round.next(&mut t), None, "InPlace never evicts");
    assert!(t.is_empty());
    assert_eq!(plan(&i, &settings, &mut t), [format!("resize a {LONG}")]);
    // A kubelet Error in progress is also transient (upstream #10093).
    let mut erroring = i.clone();
    if let Some(p) = erroring.pods.first_mut() {
        p.conditions.push(condition(
            PodConditionType::PodResizeInProgress,
            "Error",
            "missing memory usage",
        ));
    }
    assert_eq!(
        plan(&erroring, &settings, &mut t),
        ["resize a ResendWhileDeferred(LongLivedDifference, Resizing(Error))"]
    );
    assert!(t.is_empty());
}

#[test]
fn in_place_kubelet_infeasible_is_recorded_and_retried_once() {
    let settings = in_place_gate();
    let mut t = InPlaceTracker::new();
    let mut a = simple("a", cpu(1000), cpu(5000));
    a.conditions.push(condition(
        PodConditionType::PodResizePending,
        "Infeasible",
        "",
    ));
    let i = input(UpdateMode::InPlace, vec![a, simple("b", cpu(1), cpu(1))], 2);
    assert_eq!(
        plan(&i, &settings, &mut t),
        ["resize a RetryInfeasible(LongLivedDifference)"]
    );
    assert!(t.infeasible_attempt("uid-a").is_some());
    assert_eq!(plan(&i, &settings, &mut t), ["skip a InfeasibleCached"]);
}

#[test]
fn in_place_resends_while_deferred_as_upstream() {
    // Upstream quirk: mode InPlace falls through on Deferred and sends the resize anyway.
    let pods = vec![
        simple("a", cpu(1000), cpu(5000)),
        simple("b", cpu(1000), cpu(3000)),
    ];
    let got = plan(
        &input(UpdateMode::InPlace, pods, 2),
        &in_place_gate(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(
        got,
        [
            format!("resize a {LONG}"),
            "resize b ResendWhileDeferred(LongLivedDifference, DisruptionBudget)".into(),
        ]
    );
}

#[test]
fn in_place_resize_of_a_pod_without_group_fails_without_the_api() {
    let mut a = simple("a", cpu(1000), cpu(5000));
    a.owner = None;
    let got = plan(
        &input(UpdateMode::InPlace, vec![a.clone()], 2),
        &in_place_gate(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(got, ["skip a ResizeFailed(NotInReplicaGroup)"]);
    // InPlaceOrRecreate defers pods without a group.
    let got = plan(
        &input(UpdateMode::InPlaceOrRecreate, vec![a], 2),
        &in_place_gate(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(got, ["skip a InPlaceDeferred(NotInReplicaGroup)"]);
}

#[test]
fn nothing_to_patch_falls_back_to_eviction() {
    let mut a = simple("a", cpu(1000), cpu(5000));
    if let Some(c) = a.containers.first_mut() {
        c.new_resources = None;
    }
    let got = plan(
        &input(
            UpdateMode::InPlaceOrRecreate,
            vec![a, simple("b", cpu(1), cpu(1))],
            2,
        ),
        &UpdaterSettings::default(),
        &mut InPlaceTracker::new(),
    );
    assert_eq!(got, ["evict a InPlaceFallback(Rejected(NothingToPatch))"]);
}

#[test]
fn skip_disruption_budget_resizes_small_groups_but_never_evicts_them() {
    let settings = UpdaterSettings {
        in_place_skip_disruption_budget: true,
        ..UpdaterSettings::default()
    };
    let i = input(
        UpdateMode::InPlaceOrRecreate,
        vec![simple("a", cpu(1000), cpu(5000))],
        1,
    );
    assert_eq!(
        plan(&i, &settings, &mut InPlaceTracker::new()),
        [format!("resize a {LONG}")]
    );
    let mut t = InPlaceTracker::new();
    let mut round = VpaRound::new(&i.vpa, &i.pods, &i.owners, &settings, now());
    assert!(round.next(&mut t).is_some());
    round.report(Outcome::Failed { infeasible: false }, &mut t);
    assert_eq!(
        round.next(&mut t).map(|a| describe(&a)),
        Some("skip a NotEvictable(BelowMinReplicas)".into())
    );
}

fn boosted(name: &str, ready_secs_ago: i64) -> PodView {
    let mut p = simple(name, cpu(1000), cpu(5000));
    p.boosted_containers.push("app".into());
    p.conditions.push(PodCondition {
        kind: PodConditionType::Ready,
        is_true: true,
        reason: String::new(),
        message: String::new(),
        last_transition: Some(at(-ready_secs_ago)),
    });
    p
}

#[test]
fn unboost_comes_first_and_uses_the_budget() {
    let settings = UpdaterSettings {
        gates: FeatureGates {
            cpu_startup_boost: true,
            ..Default::default()
        },
        ..UpdaterSettings::default()
    };
    let mut expired = boosted("expired", 120);
    if let Some(c) = expired.containers.first_mut() {
        c.new_resources = None;
        c.boost_original = Some(crate::view::ContainerResources {
            requests: cpu(250),
            limits: Resources::default(),
        });
    }
    let fresh = boosted("fresh", 1);
    let normal = simple("normal", cpu(1000), cpu(5000));
    let mut i = input(UpdateMode::Recreate, vec![expired, fresh, normal], 3);
    i.vpa.startup_boost = Some(StartupBoostView {
        duration: Some(Duration::from_secs(60)),
    });
    let mut t = InPlaceTracker::new();
    let p = plan_vpa(&i, &settings, &mut t, now());
    let got: Vec<String> = p.actions.iter().map(describe).collect();
    assert_eq!(
        got,
        [
            "resize expired Unboost",
            "skip normal NotEvictable(DisruptionBudget)"
        ]
    );
    let Some(Action::ResizeInPlace { patch, .. }) = p.actions.first() else {
        panic!("expected the unboost");
    };
    assert_eq!(patch.remove_boost_annotations, ["app"]);
    assert_eq!(
        patch.containers.first().map(|c| c.resources.requests),
        Some(cpu(250))
    );
    // Without the gate the boost annotations mean nothing to the updater.
    let got = plan(&i, &UpdaterSettings::default(), &mut t);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|a| !a.contains("Unboost")));
}

#[test]
fn unboost_blocked_is_reported() {
    let settings = UpdaterSettings {
        gates: FeatureGates {
            cpu_startup_boost: true,
            ..Default::default()
        },
        ..UpdaterSettings::default()
    };
    let mut p = boosted("b", 120);
    p.phase = PodPhase::Pending;
    let mut i = input(UpdateMode::Off, vec![p, boosted("c", 120)], 2);
    i.vpa.startup_boost = Some(StartupBoostView::default());
    // One of two configured pods runs: only a full tolerance lets it be disrupted.
    assert_eq!(
        plan(&i, &settings, &mut InPlaceTracker::new()),
        [
            "skip b Unboost(Pending)",
            "skip c Unboost(DisruptionBudget)"
        ]
    );
    let full = UpdaterSettings {
        eviction_tolerance: 1.0,
        ..settings
    };
    assert_eq!(
        plan(&i, &full, &mut InPlaceTracker::new()),
        ["skip b Unboost(Pending)", "resize c Unboost"]
    );
}

#[test]
fn plan_loop_covers_every_vpa_and_is_deterministic() {
    let a = input(
        UpdateMode::Recreate,
        vec![
            simple("a1", cpu(1000), cpu(5000)),
            simple("a2", cpu(1000), cpu(5000)),
        ],
        2,
    );
    let mut b = input(
        UpdateMode::InPlaceOrRecreate,
        vec![
            simple("b1", cpu(1000), cpu(5000)),
            simple("b2", cpu(1000), cpu(3000)),
        ],
        2,
    );
    b.vpa.name = "b".into();
    let inputs = vec![a, b];
    let settings = UpdaterSettings::default();
    let first = plan_loop(&inputs, &settings, &mut InPlaceTracker::new(), now());
    let second = plan_loop(&inputs, &settings, &mut InPlaceTracker::new(), now());
    assert_eq!(first, second);
    let got: Vec<Vec<String>> = first
        .iter()
        .map(|p| p.actions.iter().map(describe).collect())
        .collect();
    assert_eq!(
        got,
        [
            vec![
                format!("evict a1 {LONG}"),
                "skip a2 NotEvictable(DisruptionBudget)".into()
            ],
            vec![
                format!("resize b1 {LONG}"),
                "skip b2 InPlaceDeferred(DisruptionBudget)".into()
            ],
        ]
    );
}

mod props;
