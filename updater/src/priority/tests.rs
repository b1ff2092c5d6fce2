//! Conformance vectors 132–151 (upstream `priority_processor_test.go`,
//! `update_priority_calculator_test.go`) and the other acceptance rules.

use super::*;
use crate::testutil::*;
use crate::view::{ContainerPolicyView, ContainerResources, UpdateMode, parse_observed_containers};
use vpa_core::model::Resources;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

fn prio(p: &PodView) -> PodPriority {
    pod_priority(p)
}

#[test]
fn vector_132_scale_up_difference() {
    let p = prio(&simple("p", cpu(2000), cpu(10_000)));
    assert!(!p.outside_recommended_range);
    assert!(p.scale_up);
    assert!(close(p.resource_diff, 4.0));
}

#[test]
fn vector_133_status_requests_win_over_spec() {
    let mut p = simple("p", cpu(10_000_000), cpu(10_000));
    if let Some(c) = p.containers.first_mut() {
        c.status = Some(ContainerResources {
            requests: cpu(2000),
            limits: Resources::default(),
        });
    }
    assert!(close(prio(&p).resource_diff, 4.0));
}

#[test]
fn vector_134_scale_down() {
    let p = prio(&simple("p", cpu(4000), cpu(2000)));
    assert!(close(p.resource_diff, 0.5));
    assert!(!p.scale_up);
}

#[test]
fn vector_135_small_request() {
    let p = prio(&simple("p", cpu(10), cpu(900)));
    assert!(close(p.resource_diff, 89.0));
    assert!(p.scale_up);
}

#[test]
fn vector_136_below_lower_bound() {
    let p = with_rec(
        with_container(pod("p"), "app", cpu(4000)),
        "app",
        cpu(10_000),
        cpu(6000),
        cpu(14_000),
    );
    let p = prio(&p);
    assert!(p.outside_recommended_range);
    assert!(close(p.resource_diff, 1.5));
}

#[test]
fn vector_137_above_upper_bound() {
    let p = with_rec(
        with_container(pod("p"), "app", cpu(8000)),
        "app",
        cpu(2000),
        cpu(1000),
        cpu(3000),
    );
    let p = prio(&p);
    assert!(p.outside_recommended_range);
    assert!(close(p.resource_diff, 0.75));
    assert!(!p.scale_up);
}

#[test]
fn vector_138_two_resources_add_up() {
    let p = prio(&simple("p", res(3000, 10 * MB), res(6000, 20 * MB)));
    assert!(close(p.resource_diff, 2.0));
}

#[test]
fn vector_139_mixed_directions() {
    let p = prio(&simple("p", res(4000, 10 * MB), res(2000, 20 * MB)));
    assert!(close(p.resource_diff, 1.5));
    assert!(p.scale_up);
}

fn two_containers(r1: Resources, t1: Resources, r2: Resources, t2: Resources) -> PodView {
    let p = with_container(with_container(pod("p"), "c1", r1), "c2", r2);
    with_target(with_target(p, "c1", t1), "c2", t2)
}

#[test]
fn vector_140_containers_sum_per_resource() {
    let p = prio(&two_containers(cpu(1000), cpu(4000), cpu(2000), cpu(8000)));
    assert!(close(p.resource_diff, 3.0));
}

#[test]
fn vector_141_containers_sum_scale_down() {
    let p = prio(&two_containers(cpu(3000), cpu(1000), cpu(7000), cpu(2000)));
    assert!(close(p.resource_diff, 0.7));
}

#[test]
fn vector_142_containers_and_resources() {
    let p = prio(&two_containers(
        res(6000, 10 * MB),
        res(8000, 20 * MB),
        res(4000, 30 * MB),
        res(7000, 30 * MB),
    ));
    assert!(close(p.resource_diff, 0.75));
    assert!(p.scale_up);
}

#[test]
fn vector_143_observed_containers_annotation() {
    let base = simple("p", cpu(1000), cpu(10_000));
    for (annotation, diff) in [
        (None, 9.0),
        (Some("app"), 9.0),
        (Some(""), 0.0),
        (Some("abcd;';"), 9.0),
    ] {
        let mut p = base.clone();
        p.observed_containers = annotation.and_then(parse_observed_containers);
        assert!(close(prio(&p).resource_diff, diff), "{annotation:?}");
    }
}

#[test]
fn missing_request_is_outside_and_scale_up() {
    let p = prio(&simple("p", Resources::default(), cpu(100)));
    assert!(p.outside_recommended_range && p.scale_up);
    // max(request, 1) milli: |1 - 100| / 1.
    assert!(close(p.resource_diff, 99.0));
}

#[test]
fn memory_is_compared_in_milli_units() {
    // A zero memory request counts as 1 milli-byte, not 1 byte.
    let p = prio(&simple("p", res(100, 0), res(100, 1)));
    assert!(close(p.resource_diff, 999.0));
}

#[test]
fn containers_without_recommendation_are_ignored() {
    let p = with_container(simple("p", cpu(1000), cpu(2000)), "side", cpu(5));
    assert!(close(prio(&p).resource_diff, 1.0));
    let none = with_container(pod("q"), "app", cpu(5));
    assert_eq!(prio(&none), PodPriority::default());
}

fn accepted(p: &PodView, settings: &UpdaterSettings) -> Result<Accepted, NotAccepted> {
    evaluate(
        p,
        &vpa(UpdateMode::Recreate),
        settings,
        &InPlaceTracker::new(),
        now(),
    )
}

fn aged(mut p: PodView, hours: i64) -> PodView {
    p.start_time = Some(at(-hours * 3600));
    p
}

#[test]
fn vector_144_sort_by_difference() {
    let settings = UpdaterSettings::default();
    let pods = vec![
        aged(simple("POD1", cpu(2000), cpu(10_000)), 24),
        aged(simple("POD2", cpu(4000), cpu(10_000)), 24),
        aged(simple("POD3", cpu(1000), cpu(10_000)), 24),
        aged(simple("POD4", cpu(3000), cpu(10_000)), 24),
    ];
    let mut order: Vec<(usize, PodPriority)> = pods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| accepted(p, &settings).ok().map(|a| (i, a.priority)))
        .collect();
    sort_for_update(&mut order, &pods);
    let names: Vec<&str> = order
        .iter()
        .filter_map(|(i, _)| pods.get(*i))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["POD3", "POD1", "POD4", "POD2"]);
}

#[test]
fn vector_145_scale_up_goes_first() {
    let settings = UpdaterSettings::default();
    let pods = vec![
        aged(simple("POD1", cpu(4000), cpu(5000)), 24),
        aged(simple("POD2", cpu(4000), cpu(3000)), 24),
        aged(simple("POD3", cpu(4000), cpu(2000)), 24),
    ];
    let mut order: Vec<(usize, PodPriority)> = pods
        .iter()
        .enumerate()
        .filter_map(|(i, p)| accepted(p, &settings).ok().map(|a| (i, a.priority)))
        .collect();
    sort_for_update(&mut order, &pods);
    let names: Vec<&str> = order
        .iter()
        .filter_map(|(i, _)| pods.get(*i))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["POD1", "POD3", "POD2"]);
}

#[test]
fn vector_146_no_difference_no_update() {
    let p = aged(simple("p", cpu(4000), cpu(4000)), 24);
    assert_eq!(
        accepted(&p, &UpdaterSettings::default()),
        Err(NotAccepted::DifferenceTooSmall)
    );
}

#[test]
fn vector_147_long_lived_pods() {
    let settings = UpdaterSettings {
        pod_update_threshold: 0.5,
        ..UpdaterSettings::default()
    };
    let p1 = aged(
        with_rec(
            with_container(pod("P1"), "app", cpu(4000)),
            "app",
            cpu(5000),
            cpu(1000),
            cpu(20_000),
        ),
        13,
    );
    let p2 = aged(
        with_rec(
            with_container(pod("P2"), "app", cpu(2000)),
            "app",
            cpu(10_000),
            cpu(1000),
            cpu(20_000),
        ),
        13,
    );
    let p3 = aged(
        with_rec(
            with_container(pod("P3"), "app", cpu(4000)),
            "app",
            cpu(5000),
            cpu(4500),
            cpu(20_000),
        ),
        13,
    );
    assert_eq!(
        accepted(&p1, &settings),
        Err(NotAccepted::DifferenceTooSmall)
    );
    assert_eq!(
        accepted(&p2, &settings).map(|a| a.reason),
        Ok(UpdateReason::LongLivedDifference)
    );
    assert_eq!(
        accepted(&p3, &settings).map(|a| a.reason),
        Ok(UpdateReason::OutsideRecommendedRange)
    );
}

#[test]
fn vector_148_short_lived_pods() {
    let settings = UpdaterSettings::default();
    let p1 = aged(simple("P1", cpu(4000), cpu(5000)), 11);
    let p2 = aged(simple("P2", cpu(4000), cpu(4000)), 11);
    let p3 = aged(
        with_rec(
            with_container(pod("P3"), "app", cpu(10_000)),
            "app",
            cpu(1000),
            cpu(500),
            cpu(2000),
        ),
        11,
    );
    assert_eq!(accepted(&p1, &settings), Err(NotAccepted::ShortLived));
    assert_eq!(accepted(&p2, &settings), Err(NotAccepted::ShortLived));
    let a = accepted(&p3, &settings);
    assert!(
        a.as_ref()
            .is_ok_and(|a| close(a.priority.resource_diff, 0.9)),
        "{a:?}"
    );
}

#[test]
fn vector_149_quick_oom_updates_short_lived_pod() {
    let p = oom_after(aged(simple("p", cpu(4000), cpu(5000)), 11), 120);
    assert_eq!(
        accepted(&p, &UpdaterSettings::default()).map(|a| a.reason),
        Ok(UpdateReason::QuickOom)
    );
}

#[test]
fn vector_150_quick_oom_without_change() {
    let p = oom_after(aged(simple("p", cpu(4000), cpu(4000)), 11), 120);
    assert_eq!(
        accepted(&p, &UpdaterSettings::default()),
        Err(NotAccepted::QuickOomWithoutChange)
    );
}

#[test]
fn vector_151_oom_after_long_run_is_not_quick() {
    let p = oom_after(aged(simple("p", cpu(4000), cpu(4000)), 11), 57 * 60);
    assert_eq!(
        accepted(&p, &UpdaterSettings::default()),
        Err(NotAccepted::ShortLived)
    );
}

#[test]
fn lifetime_threshold_is_inclusive_and_start_time_required() {
    let settings = UpdaterSettings::default();
    let p = aged(simple("p", cpu(4000), cpu(5000)), 12);
    assert!(accepted(&p, &settings).is_ok());
    let mut young = p.clone();
    young.start_time = Some(at(-12 * 3600 + 1));
    assert_eq!(accepted(&young, &settings), Err(NotAccepted::ShortLived));
    let mut unknown = p;
    unknown.start_time = None;
    assert_eq!(accepted(&unknown, &settings), Err(NotAccepted::NoStartTime));
}

#[test]
fn quick_oom_threshold_per_vpa_needs_the_gate() {
    let p = oom_after(aged(simple("p", cpu(4000), cpu(5000)), 11), 120);
    let mut v = vpa(UpdateMode::Recreate);
    v.evict_after_oom_seconds = Some(60);
    let off = UpdaterSettings::default();
    assert!(has_quick_oom(&p, &v, &off));
    let on = UpdaterSettings {
        gates: crate::settings::FeatureGates {
            per_vpa_config: true,
            ..Default::default()
        },
        ..off
    };
    assert!(!has_quick_oom(&p, &v, &on));
    assert_eq!(evict_after_oom_threshold(&v, &on), Duration::from_secs(60));
}

#[test]
fn quick_oom_ignores_unobserved_and_off_containers() {
    let p = oom_after(aged(simple("p", cpu(4000), cpu(5000)), 11), 120);
    let settings = UpdaterSettings::default();
    let mut v = vpa(UpdateMode::Recreate);
    v.container_policies.push(ContainerPolicyView {
        container_name: "app".into(),
        mode_off: true,
        ..Default::default()
    });
    assert!(!has_quick_oom(&p, &v, &settings));
    let mut unobserved = p.clone();
    unobserved.observed_containers = Some(vec!["other".into()]);
    assert!(!has_quick_oom(
        &unobserved,
        &vpa(UpdateMode::Recreate),
        &settings
    ));
    let mut other_reason = p;
    if let Some(t) = other_reason
        .containers
        .first_mut()
        .and_then(|c| c.last_termination.as_mut())
    {
        t.reason = "Error".into();
    }
    assert!(!has_quick_oom(
        &other_reason,
        &vpa(UpdateMode::Recreate),
        &settings
    ));
}

#[test]
fn recommendation_errors_are_not_updated() {
    let mut p = aged(simple("p", cpu(1), cpu(5000)), 24);
    p.recommendation_error = Some("limit range".into());
    assert_eq!(
        accepted(&p, &UpdaterSettings::default()),
        Err(NotAccepted::RecommendationError("limit range".into()))
    );
}

#[test]
fn in_place_mode_skips_cached_infeasible_unless_lower() {
    let p = simple("p", cpu(1000), cpu(5000));
    let mut tracker = InPlaceTracker::new();
    tracker.record_infeasible(
        &p.uid,
        vec![crate::view::ContainerTarget {
            container_name: "app".into(),
            target: cpu(5000),
        }],
    );
    let settings = UpdaterSettings::default();
    let in_place = vpa(UpdateMode::InPlace);
    assert_eq!(
        evaluate(&p, &in_place, &settings, &tracker, now()),
        Err(NotAccepted::InfeasibleCached)
    );
    // Other modes ignore the cache.
    assert!(
        evaluate(
            &p,
            &vpa(UpdateMode::InPlaceOrRecreate),
            &settings,
            &tracker,
            now()
        )
        .is_ok()
    );
    // A lower target retries.
    let lower = simple("p", cpu(1000), cpu(4000));
    assert!(evaluate(&lower, &in_place, &settings, &tracker, now()).is_ok());
}

#[test]
fn ties_are_broken_by_name() {
    let pods = vec![
        simple("b", cpu(1000), cpu(2000)),
        simple("a", cpu(1000), cpu(2000)),
    ];
    let mut order: Vec<(usize, PodPriority)> = pods
        .iter()
        .enumerate()
        .map(|(i, p)| (i, pod_priority(p)))
        .collect();
    sort_for_update(&mut order, &pods);
    assert_eq!(order.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 0]);
}
