//! Property tests: the disruption budget and minReplicas hold for any input, plans are
//! deterministic, pods at their target get no action, the update order is total, and the
//! token bucket never lets more through than its rate and burst.

use super::*;
use crate::priority::{PodPriority, sort_for_update};
use crate::rate_limit::TokenBucket;
use crate::restriction::{GroupStats, Membership, ReplicaGroups};
use crate::view::{ContainerResources, OwnerRef, OwnerReplicas, RecommendedResources};
use proptest::prelude::*;
use std::collections::HashMap;

fn arb_mode() -> impl Strategy<Value = UpdateMode> {
    prop_oneof![
        1 => Just(UpdateMode::Off),
        1 => Just(UpdateMode::Initial),
        3 => Just(UpdateMode::Recreate),
        1 => Just(UpdateMode::Auto),
        3 => Just(UpdateMode::InPlaceOrRecreate),
        3 => Just(UpdateMode::InPlace),
    ]
}

fn arb_settings() -> impl Strategy<Value = UpdaterSettings> {
    (
        0i64..4,
        0.0f64..1.0,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        0.0f64..0.5,
    )
        .prop_map(
            |(min_replicas, tolerance, skip, in_place, boost, threshold)| UpdaterSettings {
                min_replicas,
                eviction_tolerance: tolerance,
                pod_update_threshold: threshold,
                in_place_skip_disruption_budget: skip,
                gates: FeatureGates {
                    in_place,
                    cpu_startup_boost: boost,
                    per_vpa_config: false,
                },
                ..UpdaterSettings::default()
            },
        )
}

/// A resize condition: none, or one of the kubelet's states.
fn arb_resize() -> impl Strategy<Value = Option<(PodConditionType, &'static str)>> {
    prop_oneof![
        6 => Just(None),
        1 => Just(Some((PodConditionType::PodResizePending, "Deferred"))),
        1 => Just(Some((PodConditionType::PodResizePending, "Infeasible"))),
        1 => Just(Some((PodConditionType::PodResizeInProgress, ""))),
        1 => Just(Some((PodConditionType::PodResizeInProgress, "Error"))),
    ]
}

#[derive(Debug, Clone)]
struct PodSpec {
    request: i64,
    target: i64,
    pending: bool,
    age_h: i64,
    resize: Option<(PodConditionType, &'static str)>,
    boosted: bool,
    oom: bool,
}

fn arb_pod() -> impl Strategy<Value = PodSpec> {
    (
        1i64..5000,
        prop_oneof![Just(None), (1i64..5000).prop_map(Some)],
        prop::bool::weighted(0.15),
        0i64..48,
        arb_resize(),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(request, target, pending, age_h, resize, boosted, oom)| PodSpec {
                request,
                target: target.unwrap_or(request),
                pending,
                age_h,
                resize,
                boosted,
                oom,
            },
        )
}

fn build_pod(name: String, owner: OwnerRef, s: &PodSpec) -> PodView {
    let lower = s.target.min(s.request) / 2;
    let upper = s.target.max(s.request) * 2;
    let mut p = with_rec(
        with_container(pod(&name), "app", cpu(s.request)),
        "app",
        cpu(s.target),
        cpu(lower),
        cpu(upper),
    );
    p.owner = Some(owner);
    p.start_time = Some(at(-s.age_h * 3600));
    if s.pending {
        p.phase = PodPhase::Pending;
    }
    if let Some(c) = p.containers.first_mut() {
        c.new_resources = Some(ContainerResources {
            requests: cpu(s.target),
            limits: Resources::default(),
        });
    }
    if let Some((kind, reason)) = s.resize {
        p.conditions.push(condition(kind, reason, ""));
    }
    if s.boosted {
        p.boosted_containers.push("app".into());
        p.conditions.push(PodCondition {
            kind: PodConditionType::Ready,
            is_true: true,
            reason: String::new(),
            message: String::new(),
            last_transition: Some(at(-600)),
        });
    }
    if s.oom {
        p = oom_after(p, 60);
    }
    p
}

fn arb_input() -> impl Strategy<Value = VpaInput> {
    (
        arb_mode(),
        prop_oneof![Just(None), (0i32..4).prop_map(Some)],
        any::<bool>(),
        prop::collection::vec(
            (
                prop_oneof![1 => Just(None), 6 => (0i32..8).prop_map(Some)],
                prop::collection::vec(arb_pod(), 0..7),
            ),
            1..4,
        ),
    )
        .prop_map(|(mode, min_replicas, boost, groups)| {
            let mut v = vpa(mode);
            v.min_replicas = min_replicas;
            if boost {
                v.startup_boost = Some(StartupBoostView::default());
            }
            let mut pods = Vec::new();
            let mut owners = Vec::new();
            for (g, (count, specs)) in groups.iter().enumerate() {
                let o = owner(&format!("rs-{g}"));
                owners.push(OwnerReplicas {
                    owner: o.clone(),
                    count: *count,
                });
                for (i, s) in specs.iter().enumerate() {
                    pods.push(build_pod(format!("g{g}-p{i}"), o.clone(), s));
                }
            }
            VpaInput {
                vpa: v,
                pods,
                owners,
            }
        })
}

/// At most this many running pods of a group may be disrupted in one loop.
fn budget(s: &GroupStats) -> i64 {
    let by_tolerance = s.running - (s.configured - s.eviction_tolerance);
    let at_least_one = i64::from(s.configured == s.running && s.eviction_tolerance == 0);
    by_tolerance.max(at_least_one).max(0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn budget_and_min_replicas_hold(input in arb_input(), settings in arb_settings()) {
        let groups = ReplicaGroups::build(&input.vpa, &input.pods, &input.owners, &settings);
        let plan = plan_vpa(&input, &settings, &mut InPlaceTracker::new(), now());
        let index: HashMap<&str, usize> =
            input.pods.iter().enumerate().map(|(i, p)| (p.name.as_str(), i)).collect();
        let mut evictions: HashMap<usize, i64> = HashMap::new();
        let mut disruptions: HashMap<usize, i64> = HashMap::new();
        let mut touched = std::collections::HashSet::new();
        for a in plan.actions.iter().filter(|a| a.needs_outcome()) {
            let pod = a.pod();
            prop_assert!(touched.insert(pod.name.clone()), "{} acted on twice", pod.name);
            let i = index.get(pod.name.as_str()).copied().unwrap_or(usize::MAX);
            match groups.membership(i) {
                Membership::Group(g) => {
                    let below = groups.stats_of(i).is_some_and(|s| s.below_min_replicas);
                    let is_eviction = matches!(a, Action::Evict { .. });
                    if !pod.is_pending() {
                        *disruptions.entry(g).or_default() += 1;
                        if is_eviction {
                            prop_assert!(!below, "evicted {} below minReplicas", pod.name);
                            *evictions.entry(g).or_default() += 1;
                        }
                    }
                }
                other => {
                    // Only mode InPlace sends resizes for pods outside groups, and those
                    // fail before the API (a Skip, not an action).
                    prop_assert!(false, "acted on {} outside a group: {other:?}", pod.name);
                }
            }
        }
        let strict = input.vpa.mode != UpdateMode::InPlace && !settings.in_place_skip_disruption_budget;
        for (g, (_, stats)) in groups.groups().enumerate() {
            let b = budget(stats);
            prop_assert!(evictions.get(&g).copied().unwrap_or(0) <= b, "evictions over budget {b} in group {g}");
            if strict {
                prop_assert!(disruptions.get(&g).copied().unwrap_or(0) <= b, "disruptions over budget {b} in group {g}");
            }
        }
    }

    #[test]
    fn plans_are_deterministic(input in arb_input(), settings in arb_settings()) {
        let a = plan_vpa(&input, &settings, &mut InPlaceTracker::new(), now());
        let b = plan_vpa(&input, &settings, &mut InPlaceTracker::new(), now());
        prop_assert_eq!(a, b);
    }

    #[test]
    fn pods_at_their_target_get_no_action(input in arb_input(), settings in arb_settings(), slack in 0i64..100) {
        let mut input = input;
        for p in &mut input.pods {
            p.boosted_containers.clear();
            for c in &mut p.containers {
                c.last_termination = None;
                let request = c.spec.requests;
                if let Some(r) = p.recommendation.iter_mut().find(|r| r.container_name == c.name) {
                    r.recommended = RecommendedResources {
                        target: request,
                        lower_bound: request.map(|_, v| (v - slack).max(0)),
                        upper_bound: request.map(|_, v| v + slack),
                    };
                }
            }
        }
        let plan = plan_vpa(&input, &settings, &mut InPlaceTracker::new(), now());
        prop_assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    }

    #[test]
    fn update_order_is_total_and_independent_of_input_order(
        prios in prop::collection::vec((any::<bool>(), 0u8..6, 0u8..4), 1..20),
        seed in any::<u64>(),
    ) {
        let pods: Vec<PodView> = prios.iter().enumerate().map(|(i, (_, _, n))| {
            let mut p = pod(&format!("p{n}"));
            p.uid = format!("u{i}");
            p
        }).collect();
        let entries: Vec<(usize, PodPriority)> = prios.iter().enumerate().map(|(i, (up, d, _))| (i, PodPriority {
            outside_recommended_range: false,
            scale_up: *up,
            resource_diff: f64::from(*d) / 2.0,
        })).collect();
        let mut forward = entries.clone();
        sort_for_update(&mut forward, &pods);
        // A deterministic shuffle.
        let mut shuffled = entries;
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        sort_for_update(&mut shuffled, &pods);
        prop_assert_eq!(&forward, &shuffled);
        for w in forward.windows(2) {
            if let [(_, a), (_, b)] = w {
                prop_assert!(a.update_order(b) != std::cmp::Ordering::Greater);
            }
        }
    }

    #[test]
    fn token_bucket_respects_rate_and_burst(
        limit in 0.5f64..20.0,
        burst in 1i64..5,
        gaps_ms in prop::collection::vec(0i64..400, 1..60),
    ) {
        let mut bucket = TokenBucket::new(limit, burst);
        let mut now_ms = 0i64;
        let mut starts: Vec<f64> = Vec::new();
        for g in gaps_ms {
            now_ms += g;
            let t = at(0).add(vpa_core::time::Duration::from_nanos(now_ms * 1_000_000));
            let wait = bucket.reserve(t, None);
            prop_assert!(wait.is_ok());
            let wait = wait.map(|w| w.as_nanos_f64() / 1e9).unwrap_or(0.0);
            starts.push(now_ms as f64 / 1000.0 + wait);
        }
        for w in starts.windows(2) {
            if let [a, b] = w {
                prop_assert!(b + 1e-6 >= *a, "actions start in order");
            }
        }
        for i in 0..starts.len() {
            for j in i..starts.len() {
                let (a, b) = (starts.get(i).copied().unwrap_or(0.0), starts.get(j).copied().unwrap_or(0.0));
                let n = (j - i + 1) as f64;
                prop_assert!(n <= burst as f64 + limit * (b - a) + 1e-6,
                    "{n} actions in {}s with rate {limit} and burst {burst}", b - a);
            }
        }
    }
}
