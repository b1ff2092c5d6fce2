//! The updater's decision step at scale: one loop over 10,000 VPAs with 100,000 pods
//! (10 per VPA, two containers each, in 1,000 namespaces), in memory. Modes are mixed
//! (Recreate, InPlaceOrRecreate, InPlace with its gate, Off); about a third of the pods
//! need an update, some are resizing, some OOM-killed. The views are built once; each
//! iteration runs `plan_loop` (tracker, groups, priorities, ordering, restrictions, actions).
//!
//!   cargo bench -p vpa-updater --bench decide -- --quick
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use vpa_core::model::Resources;
use vpa_core::time::{Duration, Timestamp};
use vpa_updater::in_place::InPlaceTracker;
use vpa_updater::plan::{VpaInput, plan_loop};
use vpa_updater::settings::{FeatureGates, UpdaterSettings};
use vpa_updater::view::{
    ContainerRecommendation, ContainerResources, ContainerTarget, ContainerView, OOM_KILLED,
    OwnerRef, OwnerReplicas, PodCondition, PodConditionType, PodView, RecommendedResources,
    Termination, UpdateMode, VpaView,
};

const NAMESPACES: usize = 1_000;
const VPAS_PER_NS: usize = 10;
const PODS_PER_VPA: usize = 10;
const MI: i64 = 1 << 20;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_700_000_000)
}

fn container(
    name: &str,
    request: Resources,
    target: Resources,
) -> (ContainerView, ContainerRecommendation) {
    let c = ContainerView {
        name: name.into(),
        spec: ContainerResources {
            requests: request,
            limits: Resources::default(),
        },
        new_resources: Some(ContainerResources {
            requests: target,
            limits: Resources::default(),
        }),
        ..Default::default()
    };
    let half = target.map(|_, v| v / 2);
    let double = target.map(|_, v| v * 2);
    let r = ContainerRecommendation {
        container_name: name.into(),
        recommended: RecommendedResources {
            target,
            lower_bound: half,
            upper_bound: double,
        },
    };
    (c, r)
}

fn inputs() -> Vec<VpaInput> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::with_capacity(NAMESPACES * VPAS_PER_NS);
    for ns in 0..NAMESPACES {
        let namespace = format!("ns-{ns}");
        for v in 0..VPAS_PER_NS {
            let mode = match rng.below(10) {
                0..=4 => UpdateMode::Recreate,
                5..=7 => UpdateMode::InPlaceOrRecreate,
                8 => UpdateMode::InPlace,
                _ => UpdateMode::Off,
            };
            let app_target = Resources::new(
                100 + rng.below(900) as i64,
                (128 + rng.below(896) as i64) * MI,
            );
            let side_target =
                Resources::new(10 + rng.below(90) as i64, (32 + rng.below(96) as i64) * MI);
            let vpa = VpaView {
                namespace: namespace.clone(),
                name: format!("app-{v}"),
                mode,
                eviction_requirements: Some(Vec::new()),
                recommendation: Some(vec![
                    ContainerTarget {
                        container_name: "app".into(),
                        target: app_target,
                    },
                    ContainerTarget {
                        container_name: "sidecar".into(),
                        target: side_target,
                    },
                ]),
                ..Default::default()
            };
            let owner = OwnerRef {
                kind: "ReplicaSet".into(),
                name: format!("app-{v}-7d9f8c"),
            };
            let mut pods = Vec::with_capacity(PODS_PER_VPA);
            for i in 0..PODS_PER_VPA {
                // A third need an update: requests off by 3x; the rest within 5%.
                let scale = |r: Resources, rng: &mut Rng| {
                    if rng.below(3) == 0 {
                        r.map(|_, x| x * 3)
                    } else {
                        r.map(|_, x| x + x / 20)
                    }
                };
                let app_req = scale(app_target, &mut rng);
                let side_req = scale(side_target, &mut rng);
                let (mut app, app_rec) = container("app", app_req, app_target);
                let (side, side_rec) = container("sidecar", side_req, side_target);
                if rng.below(50) == 0 {
                    app.last_termination = Some(Termination {
                        reason: OOM_KILLED.into(),
                        started_at: Some(now().sub(Duration::from_minutes(20))),
                        finished_at: Some(now().sub(Duration::from_minutes(18))),
                    });
                }
                let mut conditions = vec![PodCondition {
                    kind: PodConditionType::Ready,
                    is_true: true,
                    reason: String::new(),
                    message: String::new(),
                    last_transition: Some(now().sub(Duration::from_hours(20))),
                }];
                if rng.below(40) == 0 {
                    conditions.push(PodCondition {
                        kind: PodConditionType::PodResizePending,
                        is_true: true,
                        reason: "Deferred".into(),
                        message: String::new(),
                        last_transition: None,
                    });
                }
                pods.push(PodView {
                    namespace: namespace.clone(),
                    name: format!("app-{v}-7d9f8c-{i:05}"),
                    uid: format!("{ns:04}-{v:02}-{i:05}"),
                    owner: Some(owner.clone()),
                    start_time: Some(now().sub(Duration::from_hours(1 + rng.below(48) as i64))),
                    containers: vec![app, side],
                    observed_containers: Some(vec!["app".into(), "sidecar".into()]),
                    conditions,
                    recommendation: vec![app_rec, side_rec],
                    ..Default::default()
                });
            }
            out.push(VpaInput {
                vpa,
                pods,
                owners: vec![OwnerReplicas {
                    owner,
                    count: Some(PODS_PER_VPA as i32),
                }],
            });
        }
    }
    out
}

fn bench_decide(c: &mut Criterion) {
    let inputs = inputs();
    let settings = UpdaterSettings {
        gates: FeatureGates {
            in_place: true,
            ..FeatureGates::default()
        },
        ..UpdaterSettings::default()
    };
    let pods: usize = inputs.iter().map(|i| i.pods.len()).sum();
    {
        let plans = plan_loop(&inputs, &settings, &mut InPlaceTracker::new(), now());
        let actions: usize = plans.iter().map(|p| p.actions.len()).sum();
        let acting = plans
            .iter()
            .flat_map(|p| &p.actions)
            .filter(|a| a.needs_outcome())
            .count();
        eprintln!(
            "decide: {} VPAs, {pods} pods -> {actions} actions ({acting} evictions or resizes)",
            inputs.len()
        );
    }
    let mut g = c.benchmark_group("updater");
    g.throughput(Throughput::Elements(pods as u64));
    g.sample_size(10);
    g.bench_function("decide_10k_vpas_100k_pods", |b| {
        let mut tracker = InPlaceTracker::new();
        b.iter(|| {
            let plans = plan_loop(black_box(&inputs), &settings, &mut tracker, now());
            black_box(plans.iter().map(|p| p.actions.len()).sum::<usize>())
        })
    });
    g.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
