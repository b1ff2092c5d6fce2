#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::action::{ContainerChange, EvictReason, ResizePatch, ResizeReason};
use crate::actuator::ApiFailure;
use crate::testutil::{MB, now, replicas, res, simple, vpa};
use crate::view::{PodView, UpdateMode, VpaView};
use prometheus_client::registry::Registry;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use vpa_core::time::Duration;

#[derive(Debug, Clone, PartialEq)]
enum Call {
    Evict(String),
    Resize(String, usize),
    Wait(i64),
}

/// Records calls; a virtual clock that waits advance; failures per pod name.
struct Fake {
    clock: Cell<Timestamp>,
    calls: RefCell<Vec<Call>>,
    evict_fail: HashMap<String, ApiFailure>,
    resize_fail: HashMap<String, ApiFailure>,
}

impl Fake {
    fn new() -> Self {
        Self {
            clock: Cell::new(now()),
            calls: RefCell::new(Vec::new()),
            evict_fail: HashMap::new(),
            resize_fail: HashMap::new(),
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.borrow().clone()
    }
}

impl Actuator for Fake {
    fn now(&self) -> Timestamp {
        self.clock.get()
    }

    async fn wait(&self, d: Duration) {
        self.calls
            .borrow_mut()
            .push(Call::Wait(d.as_nanos() / 1_000_000));
        self.clock.set(self.clock.get().add(d));
    }

    async fn evict(
        &self,
        pod: &PodView,
        _vpa: &VpaView,
        _reason: EvictReason,
        _changes: &[ContainerChange],
    ) -> Result<(), ApiFailure> {
        self.calls.borrow_mut().push(Call::Evict(pod.name.clone()));
        match self.evict_fail.get(&pod.name) {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }

    async fn resize(
        &self,
        pod: &PodView,
        _vpa: &VpaView,
        _reason: ResizeReason,
        patch: &ResizePatch,
    ) -> Result<(), ApiFailure> {
        self.calls
            .borrow_mut()
            .push(Call::Resize(pod.name.clone(), patch.containers.len()));
        match self.resize_fail.get(&pod.name) {
            Some(f) => Err(f.clone()),
            None => Ok(()),
        }
    }
}

fn input(mode: UpdateMode, n: usize) -> VpaInput {
    VpaInput {
        vpa: vpa(mode),
        pods: (0..n)
            .map(|i| simple(&format!("p{i}"), res(100, 100 * MB), res(1000, 1000 * MB)))
            .collect(),
        owners: vec![replicas("rs", i32::try_from(n).unwrap())],
    }
}

fn updater(settings: UpdaterSettings, limit: f64, burst: i64) -> (Updater, Registry) {
    let mut registry = Registry::default();
    let metrics = Arc::new(UpdaterMetrics::new(&mut registry));
    let b = || TokenBucket::new(limit, burst);
    (Updater::new(settings, (b(), b()), metrics), registry)
}

fn metrics_text(r: &Registry) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, r).unwrap();
    out
}

fn deadline() -> Timestamp {
    now().add(Duration::from_minutes(1))
}

fn evicted(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Evict(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn evicts_within_the_tolerance_and_counts() {
    let (mut u, registry) = updater(UpdaterSettings::default(), -1.0, 1);
    let fake = Fake::new();
    let inputs = [input(UpdateMode::Recreate, 4)];
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    // Tolerance 0.5 of 4 replicas: 2 evictions.
    assert_eq!(r.evicted, 2);
    assert_eq!(evicted(&fake.calls()).len(), 2);
    assert_eq!((r.vpas, r.pods, r.aborted.clone()), (1, 4, None));
    let text = metrics_text(&registry);
    assert!(text.contains("vpa_updater_evicted_pods_total 2"), "{text}");
    assert!(
        text.contains("vpa_updater_evictable_pods_count 4"),
        "{text}"
    );
    assert!(
        text.contains("vpa_updater_controlled_pods_count 4"),
        "{text}"
    );
}

#[tokio::test]
async fn a_refused_eviction_is_counted_and_retried_next_loop() {
    let (mut u, registry) = updater(UpdaterSettings::default(), -1.0, 1);
    let mut fake = Fake::new();
    let pdb = ApiFailure {
        code: Some(429),
        reason: "TooManyRequests".into(),
        causes: vec!["DisruptionBudget".into()],
        message: "Cannot evict pod as it would violate the pod's disruption budget.".into(),
    };
    for i in 0..4 {
        fake.evict_fail.insert(format!("p{i}"), pdb.clone());
    }
    let inputs = [input(UpdateMode::Recreate, 4)];
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    // Failures do not use up the tolerance: every evictable pod is tried.
    assert_eq!((r.evicted, r.eviction_failures), (0, 4));
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    assert_eq!(r.eviction_failures, 4);
    assert_eq!(evicted(&fake.calls()).len(), 8);
    let text = metrics_text(&registry);
    assert!(
        text.contains("vpa_updater_failed_eviction_attempts_total 8"),
        "{text}"
    );
    assert!(text.contains("vpa_updater_evicted_pods_total 0"), "{text}");
}

#[tokio::test]
async fn evictions_wait_on_the_rate_limiter_and_stop_at_the_deadline() {
    let settings = UpdaterSettings {
        eviction_tolerance: 1.0,
        ..UpdaterSettings::default()
    };
    let (mut u, registry) = updater(settings, 2.0, 1);
    let fake = Fake::new();
    let inputs = [input(UpdateMode::Recreate, 6)];
    let r = u
        .run_once(
            &inputs,
            &fake,
            now(),
            now().add(Duration::from_nanos(1_200_000_000)),
        )
        .await;
    // One token at once, then one every 500 ms: t=0, 0.5, 1.0; the fourth would be at 1.5 s.
    assert_eq!(
        fake.calls(),
        vec![
            Call::Evict("p0".into()),
            Call::Wait(500),
            Call::Evict("p1".into()),
            Call::Wait(500),
            Call::Evict("p2".into()),
        ]
    );
    assert_eq!(r.evicted, 3);
    assert!(r.aborted.is_some());
    assert!(metrics_text(&registry).contains("vpa_updater_loops_total{result=\"aborted\"} 1"));
}

#[tokio::test]
async fn in_place_resizes_instead_of_evicting() {
    let (mut u, registry) = updater(UpdaterSettings::default(), -1.0, 1);
    let fake = Fake::new();
    let inputs = [input(UpdateMode::InPlaceOrRecreate, 2)];
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    assert_eq!(r.resized, 1, "{:?}", fake.calls());
    assert_eq!(fake.calls()[0], Call::Resize("p0".into(), 1));
    assert!(evicted(&fake.calls()).is_empty());
    assert!(metrics_text(&registry).contains("vpa_updater_in_place_updated_pods_total 1"));
}

#[tokio::test]
async fn an_infeasible_resize_falls_back_to_eviction() {
    let settings = UpdaterSettings {
        eviction_tolerance: 1.0,
        ..UpdaterSettings::default()
    };
    let (mut u, registry) = updater(settings, -1.0, 1);
    let mut fake = Fake::new();
    fake.resize_fail.insert(
        "p0".into(),
        ApiFailure {
            code: Some(403),
            reason: "Forbidden".into(),
            causes: vec!["NodeCapacity".into()],
            message: "no room".into(),
        },
    );
    let inputs = [input(UpdateMode::InPlaceOrRecreate, 2)];
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    assert_eq!(r.resize_failures, 1);
    // The fallback eviction comes after the loop's other resizes.
    assert_eq!(
        fake.calls(),
        [
            Call::Resize("p0".into(), 1),
            Call::Resize("p1".into(), 1),
            Call::Evict("p0".into())
        ]
    );
    assert!(
        metrics_text(&registry)
            .contains("vpa_updater_failed_in_place_update_attempts_total{reason=\"infeasible\"} 1")
    );
}

#[tokio::test]
async fn mode_off_and_initial_do_nothing() {
    let (mut u, _r) = updater(UpdaterSettings::default(), -1.0, 1);
    let fake = Fake::new();
    let inputs = [input(UpdateMode::Off, 3), input(UpdateMode::Initial, 3)];
    let r = u.run_once(&inputs, &fake, now(), deadline()).await;
    assert!(fake.calls().is_empty());
    assert_eq!((r.evicted, r.resized), (0, 0));
}
