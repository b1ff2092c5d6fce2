#![allow(clippy::unwrap_used)]
use super::*;
use crate::status::conditions_from_api;
use vpa_core::conditions::{NO_PODS_MATCHED, RECOMMENDATION_PROVIDED};
use vpa_core::policy::{ContainerResourcePolicy, ContainerScalingMode};

const T0: i64 = 1_800_000_000;

fn t(minutes: i64) -> Timestamp {
    Timestamp::from_unix_seconds(T0 + minutes * 60)
}

fn settings() -> EngineSettings {
    EngineSettings {
        aggregations: Arc::new(AggregationsConfig::default()),
        recommender: PodResourceRecommender::default(),
        format: OutputFormat::default(),
        global_max_allowed: Resources::default(),
        integer_cpu: false,
        memory_saver: false,
        per_vpa_config: false,
    }
}

fn app(v: &str) -> SelectorState {
    SelectorState::Resolved(Selector::new([("app", v)], []).unwrap())
}

fn vpa(name: &str, selector: SelectorState) -> VpaInput {
    VpaInput {
        id: ObjectId::new("ns", name),
        generation: Some(1),
        selector,
        policy: None,
        config_error: None,
        annotations: BTreeMap::new(),
        observed: None,
        hpa_conflict: None,
    }
}

fn pod(name: &str, app: &str) -> PodInput {
    PodInput {
        id: ObjectId::new("ns", name),
        labels: [("app".to_string(), app.to_string())].into_iter().collect(),
        phase: PodPhase::Running,
        containers: vec![("c".to_string(), Resources::new(100, 100 << 20))],
    }
}

fn usage(pod: &str, minute: i64, cpu: i64, mem: i64) -> ContainerUsage {
    ContainerUsage {
        pod: ObjectId::new("ns", pod),
        container: "c".into(),
        timestamp: t(minute),
        cpu_millis: Some(cpu),
        memory_bytes: Some(mem),
    }
}

/// An engine with one VPA over one pod fed `minutes` minutes of constant usage.
fn fed(minutes: i64) -> Engine {
    let mut e = Engine::new(settings());
    e.sync_vpas(vec![vpa("v", app("a"))]);
    let pods = [pod("p1", "a")];
    e.sync_pods(&pods, t(0));
    for m in 0..minutes {
        let stats = e.add_usage(&[usage("p1", m, 500, 200 << 20)]);
        assert_eq!(stats.accepted, 2);
    }
    e
}

fn target(w: &StatusWrite) -> (String, String) {
    let c = &w
        .status
        .recommendation
        .as_ref()
        .unwrap()
        .container_recommendations
        .as_ref()
        .unwrap()[0];
    (c.target["cpu"].0.clone(), c.target["memory"].0.clone())
}

#[test]
fn recommendation_and_conditions_are_written_once() {
    let mut e = fed(60);
    let out = e.update_vpas(t(60));
    assert_eq!(out.writes.len(), 1);
    assert_eq!(out.with_recommendation, 1);
    let w = &out.writes[0];
    // 500m constant: percentile bucket 511m plus 15% margin (the worked example of §1.8).
    assert_eq!(target(w), ("587m".to_string(), "250Mi".to_string()));
    let conds = conditions_from_api(Some(&w.status));
    assert!(conds.get(RECOMMENDATION_PROVIDED).unwrap().status);
    assert!(conds.get(NO_PODS_MATCHED).is_none());
    assert_eq!(w.status.observed_generation, Some(1));

    // Observed = what was written: nothing to write at the same state.
    let mut input = vpa("v", app("a"));
    input.observed = Some(w.status.clone());
    e.sync_vpas(vec![input]);
    assert!(e.update_vpas(t(60)).writes.is_empty());
}

#[test]
fn no_pods_and_unsupported_target() {
    let mut e = Engine::new(settings());
    e.sync_vpas(vec![
        vpa("none", app("nothing")),
        vpa(
            "bad",
            SelectorState::Unsupported("Cannot read targetRef".into()),
        ),
    ]);
    e.sync_pods(&[pod("p1", "a")], t(0));
    let out = e.update_vpas(t(1));
    assert_eq!(out.writes.len(), 2);
    for w in &out.writes {
        let c = conditions_from_api(Some(&w.status));
        assert!(c.get(NO_PODS_MATCHED).unwrap().status);
        let rp = c.get(RECOMMENDATION_PROVIDED).unwrap();
        assert!(!rp.status);
        assert_eq!(rp.reason, "NoPodsMatched");
        if &*w.id.name == "bad" {
            assert_eq!(
                c.get(CONFIG_UNSUPPORTED).unwrap().message,
                "Cannot read targetRef"
            );
        } else {
            assert!(c.get(CONFIG_UNSUPPORTED).is_none());
        }
        // upstream writes an empty recommendation object.
        assert!(
            w.status
                .recommendation
                .as_ref()
                .unwrap()
                .container_recommendations
                .is_none()
        );
    }
}

#[test]
fn transient_target_error_keeps_history_and_selector() {
    let mut e = fed(30);
    let before = e.update_vpas(t(30)).writes;
    e.sync_vpas(vec![vpa("v", SelectorState::Transient("timeout".into()))]);
    e.sync_pods(&[pod("p1", "a")], t(31));
    let after = e.update_vpas(t(31));
    let w = &after.writes[0];
    assert_eq!(target(w), target(&before[0]));
    assert!(
        conditions_from_api(Some(&w.status))
            .get(CONFIG_UNSUPPORTED)
            .is_none()
    );
}

#[test]
fn hpa_conflict_and_metrics_problem_conditions() {
    let mut e = fed(5);
    let mut input = vpa("v", app("a"));
    input.hpa_conflict = Some("HorizontalPodAutoscaler ns/h scales on cpu".into());
    e.sync_vpas(vec![input]);
    e.set_metrics_problem(Some("metrics.k8s.io is unavailable".into()));
    let w = &e.update_vpas(t(5)).writes[0];
    let c = conditions_from_api(Some(&w.status));
    assert_eq!(
        c.get(HPA_CONFLICT).unwrap().message,
        "HorizontalPodAutoscaler ns/h scales on cpu"
    );
    assert!(c.get(METRICS_UNAVAILABLE).unwrap().status);
    e.set_metrics_problem(None);
    let mut input = vpa("v", app("a"));
    input.observed = Some(w.status.clone());
    e.sync_vpas(vec![input]);
    let w = &e.update_vpas(t(6)).writes[0];
    let c = conditions_from_api(Some(&w.status));
    assert!(c.get(METRICS_UNAVAILABLE).is_none());
    assert!(c.get(HPA_CONFLICT).is_none());
}

#[test]
fn policy_off_drops_container_and_caps_apply() {
    let mut e = fed(60);
    let mut input = vpa("v", app("a"));
    input.policy = Some(PodResourcePolicy {
        container_policies: vec![ContainerResourcePolicy {
            container_name: "c".into(),
            mode: Some(ContainerScalingMode::Off),
            ..Default::default()
        }],
    });
    e.sync_vpas(vec![input]);
    assert!(
        e.recommendation(&ObjectId::new("ns", "v"), t(60))
            .is_empty()
    );
    let mut input = vpa("v", app("a"));
    input.policy = Some(PodResourcePolicy {
        container_policies: vec![ContainerResourcePolicy {
            container_name: "*".into(),
            max_allowed: Resources::new(300, 1 << 40),
            ..Default::default()
        }],
    });
    e.sync_vpas(vec![input]);
    let r = e.recommendation(&ObjectId::new("ns", "v"), t(60));
    assert_eq!(r[0].target.cpu.as_ref().unwrap().to_string(), "300m");
    assert_eq!(
        r[0].uncapped_target.cpu.as_ref().unwrap().to_string(),
        "587m"
    );
}

#[test]
fn vanished_pods_and_vpas_are_removed() {
    let mut e = fed(1);
    assert_eq!(e.model().pod_count(), 1);
    e.sync_pods(&[], t(2));
    assert_eq!(e.model().pod_count(), 0);
    e.sync_vpas(vec![]);
    assert_eq!(e.vpa_count(), 0);
    assert!(e.update_vpas(t(2)).writes.is_empty());
}

#[test]
fn memory_saver_models_only_selected_pods() {
    let mut s = settings();
    s.memory_saver = true;
    let mut e = Engine::new(s);
    e.sync_vpas(vec![vpa("v", app("a"))]);
    e.sync_pods(&[pod("p1", "a"), pod("p2", "b")], t(0));
    assert_eq!(e.model().pod_count(), 1);
    let stats = e.add_usage(&[usage("p2", 0, 1, 1)]);
    assert_eq!(stats.unknown, 2);
}

#[test]
fn checkpoint_restart_keeps_recommendation_and_open_window_peak() {
    // 90 minutes: the memory window (24h) is still open, so its peak is not in the
    // checkpoint histogram but travels alongside it.
    let mut e = fed(90);
    // A higher memory peak in the open window.
    e.add_usage(&[usage("p1", 90, 500, 900 << 20)]);
    let id = ObjectId::new("ns", "v");
    let before = e.recommendation(&id, t(91));
    let cps = e.checkpoints_for(&id, t(91));
    assert_eq!(cps.len(), 1);
    assert_eq!(cps[0].open_windows.len(), 1);
    assert_eq!(cps[0].open_windows[0].peak, 900 << 20);

    // Restart: a fresh engine, the same VPA and pod, the checkpoint loaded.
    let mut r = Engine::new(settings());
    r.sync_vpas(vec![vpa("v", app("a"))]);
    r.load_checkpoint(&id, "c", &cps[0].status, &cps[0].open_windows)
        .unwrap();
    r.sync_pods(&[pod("p1", "a")], t(92));
    let after = r.recommendation(&id, t(92));
    assert_eq!(after, before);
    // The restored window goes on: a lower sample in it does not add a second peak, a
    // higher one replaces it.
    let mut lower = usage("p1", 92, 0, 100 << 20);
    lower.cpu_millis = None;
    r.add_usage(&[lower]);
    assert_eq!(r.recommendation(&id, t(92)), before);
    let mut higher = usage("p1", 93, 0, 1000 << 20);
    higher.cpu_millis = None;
    r.add_usage(&[higher]);
    assert!(r.recommendation(&id, t(93))[0].target.memory > before[0].target.memory);

    // Upstream-style restore without the windows loses the peak: the memory target drops.
    let mut u = Engine::new(settings());
    u.sync_vpas(vec![vpa("v", app("a"))]);
    u.load_checkpoint(&id, "c", &cps[0].status, &[]).unwrap();
    u.sync_pods(&[pod("p1", "a")], t(92));
    let lost = u.recommendation(&id, t(92));
    assert!(lost[0].target.memory < before[0].target.memory);
}

#[test]
fn restore_window_of_a_pod_gone_after_restart() {
    let mut e = fed(30);
    e.add_usage(&[usage("p1", 30, 500, 900 << 20)]);
    let id = ObjectId::new("ns", "v");
    let before = e.recommendation(&id, t(31));
    let cps = e.checkpoints_for(&id, t(31));
    let mut r = Engine::new(settings());
    r.sync_vpas(vec![vpa("v", app("a"))]);
    r.load_checkpoint(&id, "c", &cps[0].status, &cps[0].open_windows)
        .unwrap();
    r.sync_pods(&[], t(32));
    assert_eq!(r.recommendation(&id, t(32)), before);
}

#[test]
fn checkpoint_order_is_oldest_first_and_unknown_vpa_fails() {
    let mut e = Engine::new(settings());
    e.sync_vpas(vec![
        vpa("a", app("a")),
        vpa("b", app("b")),
        vpa("c", app("c")),
    ]);
    e.checkpoint_written(&ObjectId::new("ns", "a"), t(5));
    e.checkpoint_written(&ObjectId::new("ns", "c"), t(3));
    let order: Vec<String> = e
        .checkpoint_order()
        .iter()
        .map(|i| i.name.to_string())
        .collect();
    assert_eq!(order, ["b", "c", "a"]);
    let status = VerticalPodAutoscalerCheckpointStatus::default();
    assert!(matches!(
        e.load_checkpoint(&ObjectId::new("ns", "zzz"), "c", &status, &[]),
        Err(LoadError::UnknownVpa(_))
    ));
    // A checkpoint of another version is refused.
    assert!(matches!(
        e.load_checkpoint(&ObjectId::new("ns", "a"), "c", &status, &[]),
        Err(LoadError::Checkpoint(_))
    ));
}

#[test]
fn oom_bumps_memory_and_unknown_container_is_reported() {
    let mut e = fed(10);
    let id = ObjectId::new("ns", "v");
    let before = e.recommendation(&id, t(10));
    let failed = e.record_ooms(&[
        OomEvent {
            pod: ObjectId::new("ns", "p1"),
            container: "c".into(),
            timestamp: t(10),
            memory: 500 << 20,
        },
        OomEvent {
            pod: ObjectId::new("ns", "nope"),
            container: "c".into(),
            timestamp: t(10),
            memory: 1,
        },
    ]);
    assert_eq!(failed.len(), 1);
    let after = e.recommendation(&id, t(10));
    assert!(after[0].target.memory > before[0].target.memory);
}

#[test]
fn gc_is_rate_limited() {
    let mut e = fed(1);
    assert!(e.garbage_collect(t(1), |_| true).is_some());
    assert!(e.garbage_collect(t(30), |_| true).is_none());
    assert!(e.garbage_collect(t(62), |_| true).is_some());
}

#[test]
fn pods_without_metrics_for_five_minutes_are_reported() {
    let mut e = fed(1);
    let id = ObjectId::new("ns", "v");
    let covered: HashSet<ObjectId> = [ObjectId::new("ns", "p1")].into();
    e.note_metrics_coverage(&covered, t(1));
    let none = HashSet::new();
    e.note_metrics_coverage(&none, t(2));
    let w = e.update_vpas(t(4));
    assert!(
        conditions_from_api(Some(&w.writes[0].status))
            .get(METRICS_UNAVAILABLE)
            .is_none()
    );
    e.note_metrics_coverage(&none, t(7));
    let w = e.update_vpas(t(7));
    let c = conditions_from_api(Some(&w.writes[0].status));
    let m = c.get(METRICS_UNAVAILABLE).unwrap();
    assert_eq!(m.reason, "NoPodMetrics");
    assert!(m.message.contains("kubelet"), "{}", m.message);
    // Metrics again: gone.
    e.note_metrics_coverage(&covered, t(8));
    let w = e.update_vpas(t(8));
    assert!(
        conditions_from_api(Some(&w.writes[0].status))
            .get(METRICS_UNAVAILABLE)
            .is_none()
    );
    let _ = id;
}
