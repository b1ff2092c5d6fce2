#![allow(clippy::unwrap_used)]
use super::*;
use proptest::prelude::*;

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn rec(
    ns: &str,
    name: &str,
    created: i64,
    kind: &str,
    target: &str,
    active: bool,
) -> VpaRecord<u32> {
    VpaRecord {
        id: ObjectId::new(ns, name),
        created,
        target: ControllerRef::new(kind, target),
        active,
        data: 0,
    }
}

fn app(v: &str) -> Selector {
    Selector::new([("app", v)], []).unwrap()
}

fn deployment_world() -> VpaMatcher<u32> {
    let mut m = VpaMatcher::new();
    m.set_owner(
        "ns",
        ControllerRef::new("ReplicaSet", "web-5d8f9c"),
        Some(ControllerRef::new("Deployment", "web")),
    );
    m.set_owner("ns", ControllerRef::new("Deployment", "web"), None);
    m.upsert_vpa(rec("ns", "web-vpa", 100, "Deployment", "web", true));
    m.set_selector(&ObjectId::new("ns", "web-vpa"), Some(app("web")));
    m
}

#[test]
fn a_deployments_pod_finds_the_vpa_of_the_deployment() {
    let m = deployment_world();
    let rs = ControllerRef::new("ReplicaSet", "web-5d8f9c");
    let v = m.find("ns", &labels(&[("app", "web")]), Some(&rs)).unwrap();
    assert_eq!(&*v.id.name, "web-vpa");
    // Another namespace, other labels, no owner: nothing.
    assert!(matches!(
        m.find("other", &labels(&[("app", "web")]), Some(&rs)),
        Err(NoMatch::NoVpaForTarget(_))
    ));
    assert!(matches!(
        m.find("ns", &labels(&[("app", "db")]), Some(&rs)),
        Err(NoMatch::NoSelectorMatch(_))
    ));
    assert_eq!(
        m.find("ns", &labels(&[("app", "web")]), None).unwrap_err(),
        NoMatch::NoController
    );
}

#[test]
fn a_vpa_on_the_replicaset_does_not_match_when_a_deployment_owns_it() {
    let mut m = deployment_world();
    m.upsert_vpa(rec("ns", "rs-vpa", 1, "ReplicaSet", "web-5d8f9c", true));
    m.set_selector(&ObjectId::new("ns", "rs-vpa"), Some(app("web")));
    let rs = ControllerRef::new("ReplicaSet", "web-5d8f9c");
    let v = m.find("ns", &labels(&[("app", "web")]), Some(&rs)).unwrap();
    assert_eq!(&*v.id.name, "web-vpa", "topmost wins, as upstream");
}

#[test]
fn an_unseen_replicaset_is_attributed_through_the_pod_template_hash() {
    let mut m: VpaMatcher<u32> = VpaMatcher::new();
    m.upsert_vpa(rec("ns", "v", 1, "Deployment", "my-api", true));
    m.set_selector(&ObjectId::new("ns", "v"), Some(app("api")));
    let rs = ControllerRef::new("ReplicaSet", "my-api-7c9d6b5f4");
    let l = labels(&[("app", "api"), ("pod-template-hash", "7c9d6b5f4")]);
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "v");
    // Without the label the ReplicaSet itself is the topmost.
    let l = labels(&[("app", "api")]);
    assert_eq!(
        m.find("ns", &l, Some(&rs)).unwrap_err(),
        NoMatch::NoVpaForTarget(rs.clone())
    );
}

#[test]
fn cronjob_chain_and_scalable_custom_kinds() {
    let mut m: VpaMatcher<u32> = VpaMatcher::new();
    m.set_owner(
        "ns",
        ControllerRef::new("Job", "nightly-29000"),
        Some(ControllerRef::new("CronJob", "nightly")),
    );
    m.upsert_vpa(rec("ns", "cj", 1, "CronJob", "nightly", true));
    m.set_selector(&ObjectId::new("ns", "cj"), Some(app("nightly")));
    let job = ControllerRef::new("Job", "nightly-29000");
    assert_eq!(
        &*m.find("ns", &labels(&[("app", "nightly")]), Some(&job))
            .unwrap()
            .id
            .name,
        "cj"
    );

    // An Argo Rollout owns its ReplicaSets; it counts once known to have /scale.
    m.set_owner(
        "ns",
        ControllerRef::new("ReplicaSet", "ro-abc"),
        Some(ControllerRef::new("Rollout", "ro")),
    );
    m.upsert_vpa(rec("ns", "ro", 1, "Rollout", "ro", true));
    m.set_selector(&ObjectId::new("ns", "ro"), Some(app("ro")));
    let rs = ControllerRef::new("ReplicaSet", "ro-abc");
    let l = labels(&[("app", "ro")]);
    assert!(
        m.find("ns", &l, Some(&rs)).is_err(),
        "Rollout not known to be scalable yet"
    );
    m.mark_scalable("Rollout");
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "ro");
}

#[test]
fn inactive_vpas_are_skipped_and_the_oldest_active_one_wins() {
    let mut m = deployment_world();
    m.upsert_vpa(rec("ns", "older-off", 10, "Deployment", "web", false));
    m.upsert_vpa(rec("ns", "b-same-age", 100, "Deployment", "web", true));
    m.upsert_vpa(rec("ns", "newer", 500, "Deployment", "web", true));
    for n in ["older-off", "b-same-age", "newer"] {
        m.set_selector(&ObjectId::new("ns", n), Some(app("web")));
    }
    let rs = ControllerRef::new("ReplicaSet", "web-5d8f9c");
    let l = labels(&[("app", "web")]);
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "b-same-age");
    m.remove_vpa(&ObjectId::new("ns", "b-same-age"));
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "web-vpa");
    m.retain_vpas(|id| &*id.name == "newer" || &*id.name == "older-off");
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "newer");
    assert_eq!(m.len(), 2);
}

#[test]
fn a_filter_skips_vpas_the_caller_does_not_handle() {
    let mut m = deployment_world();
    m.upsert_vpa(VpaRecord {
        data: 7,
        ..rec("ns", "newer", 500, "Deployment", "web", true)
    });
    m.set_selector(&ObjectId::new("ns", "newer"), Some(app("web")));
    let rs = ControllerRef::new("ReplicaSet", "web-5d8f9c");
    let l = labels(&[("app", "web")]);
    assert_eq!(&*m.find("ns", &l, Some(&rs)).unwrap().id.name, "web-vpa");
    let v = m.find_where("ns", &l, Some(&rs), |r| r.data == 7).unwrap();
    assert_eq!(&*v.id.name, "newer");
    assert!(matches!(
        m.find_where("ns", &l, Some(&rs), |_| false),
        Err(NoMatch::NoSelectorMatch(_))
    ));
}

#[test]
fn a_retargeted_vpa_loses_its_old_selector() {
    let mut m = deployment_world();
    m.upsert_vpa(rec("ns", "web-vpa", 100, "Deployment", "other", true));
    assert!(m.selector(&ObjectId::new("ns", "web-vpa")).is_none());
    let rs = ControllerRef::new("ReplicaSet", "web-5d8f9c");
    assert!(m.find("ns", &labels(&[("app", "web")]), Some(&rs)).is_err());
    // Re-upserting with the same target keeps the selector.
    m.set_selector(&ObjectId::new("ns", "web-vpa"), Some(app("web")));
    m.upsert_vpa(rec("ns", "web-vpa", 100, "Deployment", "other", true));
    assert!(m.selector(&ObjectId::new("ns", "web-vpa")).is_some());
}

#[test]
fn cycles_and_node_owners_match_nothing() {
    let mut m: VpaMatcher<u32> = VpaMatcher::new();
    m.set_owner(
        "ns",
        ControllerRef::new("ReplicaSet", "a"),
        Some(ControllerRef::new("Deployment", "b")),
    );
    m.set_owner(
        "ns",
        ControllerRef::new("Deployment", "b"),
        Some(ControllerRef::new("ReplicaSet", "a")),
    );
    assert_eq!(
        m.find(
            "ns",
            &LabelSet::new(),
            Some(&ControllerRef::new("ReplicaSet", "a"))
        )
        .unwrap_err(),
        NoMatch::OwnerCycle
    );
    assert_eq!(
        m.find(
            "ns",
            &LabelSet::new(),
            Some(&ControllerRef::new("Node", "n1"))
        )
        .unwrap_err(),
        NoMatch::NodeOwner
    );
    m.retain_owners("ReplicaSet", |_, _| false);
    assert_eq!(m.owner_count(), 1);
}

proptest! {
    /// Whatever the VPAs, the one found is active, targets the pod's Deployment, matches
    /// its labels, and no other such VPA is older.
    #[test]
    fn find_returns_the_oldest_matching_active_vpa(
        vpas in proptest::collection::vec((0i64..5, any::<bool>(), 0u8..3, 0u8..3), 0..12),
        pod_app in 0u8..3,
    ) {
        let mut m: VpaMatcher<u32> = VpaMatcher::new();
        m.set_owner("ns", ControllerRef::new("ReplicaSet", "d-1"), Some(ControllerRef::new("Deployment", "d")));
        for (i, (created, active, target, sel)) in vpas.iter().enumerate() {
            let name = format!("v{i:02}");
            let target = if *target == 0 { "d".to_string() } else { format!("x{target}") };
            m.upsert_vpa(rec("ns", &name, *created, "Deployment", &target, *active));
            m.set_selector(&ObjectId::new("ns", &name), Some(app(&format!("a{sel}"))));
        }
        let l = labels(&[("app", &format!("a{pod_app}"))]);
        let expected = vpas
            .iter()
            .enumerate()
            .filter(|(_, (_, active, target, sel))| *active && *target == 0 && *sel == pod_app)
            .min_by_key(|(i, (created, ..))| (*created, *i))
            .map(|(i, _)| format!("v{i:02}"));
        let got = m
            .find("ns", &l, Some(&ControllerRef::new("ReplicaSet", "d-1")))
            .ok()
            .map(|v| v.id.name.to_string());
        prop_assert_eq!(got, expected);
    }
}
