//! Unit tests of target resolution without a cluster: a table-driven fake source for the
//! selector and topmost rules, the cache state machine with a fake clock, messages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::labels::LabelSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};

const NS: &str = "ns";

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn owner(api_version: &str, kind: &str, name: &str) -> Option<ObjectRef> {
    Some(ObjectRef {
        api_version: api_version.into(),
        kind: kind.into(),
        name: name.into(),
    })
}

fn app(v: &str) -> Selector {
    Selector::new([("app", v)], []).unwrap()
}

#[derive(Default)]
struct World {
    objects: HashMap<(WellKnownKind, String), Result<ObjectInfo, FetchError>>,
    scales: HashMap<(String, String, String), Result<ScaleInfo, ScaleError>>,
}

/// A source answering from tables; unknown objects are 404, unknown scale kinds NoKind.
#[derive(Clone, Default)]
struct Fake {
    world: Arc<Mutex<World>>,
    calls: Arc<AtomicUsize>,
}

impl Fake {
    fn object(&self, kind: WellKnownKind, name: &str, r: Result<ObjectInfo, FetchError>) {
        lock(&self.world).objects.insert((kind, name.into()), r);
    }
    fn deployment(&self, name: &str, controller: Option<ObjectRef>) {
        self.object(
            WellKnownKind::Deployment,
            name,
            Ok(ObjectInfo {
                selector: Ok(app(name)),
                controller,
            }),
        );
    }
    fn scale(&self, group: &str, kind: &str, name: &str, r: Result<ScaleInfo, ScaleError>) {
        lock(&self.world)
            .scales
            .insert((group.into(), kind.into(), name.into()), r);
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl Source for Fake {
    async fn object(
        &self,
        _namespace: &str,
        kind: WellKnownKind,
        name: &str,
        _now: Instant,
    ) -> Result<ObjectInfo, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.world)
            .objects
            .get(&(kind, name.to_string()))
            .cloned()
            .unwrap_or_else(|| Err(FetchError::NotFound(format!("{name:?} not found"))))
    }

    async fn scale(
        &self,
        _namespace: &str,
        group: &str,
        kind: &str,
        name: &str,
        _now: Instant,
    ) -> Result<ScaleInfo, ScaleError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        lock(&self.world)
            .scales
            .get(&(group.to_string(), kind.to_string(), name.to_string()))
            .cloned()
            .unwrap_or_else(|| Err(no_kind(group, kind)))
    }
}

async fn fetch(fake: &Fake, target: &TargetRef) -> Result<Resolved, TargetError> {
    fetch_target(fake, NS, target, Instant::now()).await
}

fn msg(r: Result<Resolved, TargetError>) -> String {
    r.expect_err("expected an error").condition_message()
}

// ----- selectors of well-known objects -------------------------------------------------

#[test]
fn label_selector_conversion() {
    let ls = LabelSelector {
        match_labels: Some([("app".to_string(), "a".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["web".into(), "edge".into()]),
            },
            LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    let s = selector_from_label_selector(Some(&ls)).unwrap();
    assert!(s.matches(&labels(&[("app", "a"), ("tier", "edge")])));
    assert!(!s.matches(&labels(&[("app", "a"), ("tier", "back")])));
    assert!(!s.matches(&labels(&[("app", "a"), ("tier", "web"), ("canary", "1")])));
    assert!(
        selector_from_label_selector(None).unwrap().is_nothing(),
        "no selector is Nothing"
    );
    let empty = selector_from_label_selector(Some(&LabelSelector::default())).unwrap();
    assert!(
        !empty.is_nothing() && empty.matches(&labels(&[("x", "y")])),
        "{{}} is Everything"
    );
    let bad = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: "Near".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert!(selector_from_label_selector(Some(&bad)).is_err());
    assert!(selector_from_set(None).unwrap().is_nothing());
    assert!(
        selector_from_set(Some(&BTreeMap::new()))
            .unwrap()
            .is_nothing()
    );
    let set = BTreeMap::from([("app".to_string(), "r".to_string())]);
    assert!(
        selector_from_set(Some(&set))
            .unwrap()
            .matches(&labels(&[("app", "r"), ("x", "y")]))
    );
}

#[test]
fn selectors_and_controllers_of_typed_objects() {
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "d", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "not-controller", "uid": "1"},
            {"apiVersion": "example.com/v1", "kind": "App", "name": "boss", "uid": "2", "controller": true}
        ]},
        "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {}}
    }))
    .unwrap();
    let info = deployment_info(&d);
    assert_eq!(info.selector, Ok(app("d")));
    assert_eq!(info.controller, owner("example.com/v1", "App", "boss"));

    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {
            "metadata": {"labels": {"job": "c"}}}}}}
    }))
    .unwrap();
    let info = cron_job_info(&cj);
    assert_eq!(
        info.selector,
        Ok(Selector::new([("job", "c")], []).unwrap())
    );
    assert_eq!(info.controller, None);
    let bare: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "c"},
        "spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {}}}}
    }))
    .unwrap();
    assert!(cron_job_info(&bare).selector.unwrap().is_nothing());

    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "r"}, "spec": {"selector": {"app": "r"}}
    }))
    .unwrap();
    assert_eq!(replication_controller_info(&rc).selector, Ok(app("r")));

    let job: Job = serde_json::from_value(json!({
        "metadata": {"name": "j"},
        "spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u"}},
                 "template": {}}
    }))
    .unwrap();
    let s = job_info(&job).selector.unwrap();
    assert!(s.matches(&labels(&[("batch.kubernetes.io/controller-uid", "u")])));
    let no_spec: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    assert!(stateful_set_info(&no_spec).selector.unwrap().is_nothing());
}

#[test]
fn group_of_api_version_as_parse_group_version() {
    assert_eq!(parse_group("apps/v1"), Ok("apps"));
    assert_eq!(parse_group("v1"), Ok(""));
    assert_eq!(parse_group(""), Ok(""));
    assert_eq!(parse_group("/"), Ok(""));
    assert_eq!(parse_group("argoproj.io/v1alpha1"), Ok("argoproj.io"));
    assert_eq!(
        parse_group("a/b/c"),
        Err("unexpected GroupVersion string: a/b/c".to_string())
    );
}

// ----- resolution: selector stage ----------------------------------------------------

#[tokio::test]
async fn well_known_targets_resolve_by_kind_alone() {
    let fake = Fake::default();
    fake.deployment("web", None);
    let r = fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "web"))
        .await
        .unwrap();
    assert_eq!(r.selector, app("web"));
    assert_eq!(
        (r.kind.as_str(), r.api_version.as_str(), r.name.as_str()),
        ("Deployment", "apps/v1", "web")
    );
    // Upstream ignores the apiVersion of well-known kinds.
    let old = fetch(
        &fake,
        &TargetRef::new("extensions/v1beta1", "Deployment", "web"),
    )
    .await
    .unwrap();
    assert_eq!(old.selector, app("web"));
    assert_eq!(old.api_version, "extensions/v1beta1");
    assert_eq!(fake.calls(), 2);
}

#[tokio::test]
async fn missing_well_known_target_is_not_found_with_upstream_message() {
    let fake = Fake::default();
    let err = fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "gone"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TargetError::NotFound {
            stage: Stage::Selector,
            ..
        }
    ));
    assert!(!err.is_transient());
    assert_eq!(
        err.condition_message(),
        "Cannot read targetRef. Reason: Deployment ns/gone does not exist"
    );
}

#[tokio::test]
async fn invalid_selector_of_a_well_known_object() {
    let fake = Fake::default();
    fake.object(
        WellKnownKind::DaemonSet,
        "ds",
        Ok(ObjectInfo {
            selector: Err("\"Near\" is not a valid label selector operator".into()),
            controller: None,
        }),
    );
    let err = fetch(&fake, &TargetRef::new("apps/v1", "DaemonSet", "ds"))
        .await
        .unwrap_err();
    assert!(matches!(err, TargetError::Invalid { .. }));
    assert_eq!(
        err.condition_message(),
        "Cannot read targetRef. Reason: \"Near\" is not a valid label selector operator"
    );
}

#[tokio::test]
async fn scalable_custom_resource_resolves_through_scale_status_selector() {
    let fake = Fake::default();
    fake.scale(
        "argoproj.io",
        "Rollout",
        "r",
        Ok(ScaleInfo {
            selector: Some("app=r,track in (stable,canary)".into()),
            controller: None,
        }),
    );
    let r = fetch(
        &fake,
        &TargetRef::new("argoproj.io/v1alpha1", "Rollout", "r"),
    )
    .await
    .unwrap();
    assert!(
        r.selector
            .matches(&labels(&[("app", "r"), ("track", "canary")]))
    );
    assert!(!r.selector.matches(&labels(&[("app", "r")])));
}

#[tokio::test]
async fn scale_failures_are_wrapped_as_upstream_does() {
    let fake = Fake::default();
    fake.scale("", "ConfigMap", "cm", Err(ScaleError::NoScale));
    fake.scale(
        "example.com",
        "App",
        "gone",
        Err(ScaleError::Fetch(FetchError::NotFound(
            "apps.example.com \"gone\" not found".into(),
        ))),
    );
    fake.scale(
        "example.com",
        "App",
        "empty",
        Ok(ScaleInfo {
            selector: None,
            controller: None,
        }),
    );
    fake.scale(
        "example.com",
        "App",
        "bad",
        Ok(ScaleInfo {
            selector: Some("a in (x".into()),
            controller: None,
        }),
    );
    fake.scale(
        "example.com",
        "App",
        "busy",
        Err(ScaleError::Fetch(FetchError::Transient(
            "etcdserver: request timed out".into(),
        ))),
    );

    let cm = fetch(&fake, &TargetRef::new("v1", "ConfigMap", "cm")).await;
    assert!(matches!(cm, Err(TargetError::Unsupported { .. })));
    assert_eq!(
        msg(cm),
        "Cannot read targetRef. Reason: Unhandled targetRef v1 / ConfigMap / cm, last error \
         the server could not find the requested resource"
    );
    let unknown = fetch(&fake, &TargetRef::new("example.com/v1", "Nope", "x")).await;
    assert!(matches!(unknown, Err(TargetError::Unsupported { .. })));
    assert_eq!(
        msg(unknown),
        "Cannot read targetRef. Reason: Unhandled targetRef example.com/v1 / Nope / x, last \
         error no matches for kind \"Nope\" in group \"example.com\""
    );
    let gone = fetch(&fake, &TargetRef::new("example.com/v1", "App", "gone")).await;
    assert!(matches!(gone, Err(TargetError::NotFound { .. })));
    assert_eq!(
        msg(gone),
        "Cannot read targetRef. Reason: Unhandled targetRef example.com/v1 / App / gone, last \
         error apps.example.com \"gone\" not found"
    );
    let empty = fetch(&fake, &TargetRef::new("example.com/v1", "App", "empty")).await;
    assert!(matches!(empty, Err(TargetError::Invalid { .. })));
    assert_eq!(
        msg(empty),
        "Cannot read targetRef. Reason: Unhandled targetRef example.com/v1 / App / empty, last \
         error Resource ns/empty has an empty selector for scale sub-resource"
    );
    let bad = fetch(&fake, &TargetRef::new("example.com/v1", "App", "bad")).await;
    assert!(matches!(bad, Err(TargetError::Invalid { .. })));
    assert_eq!(
        msg(bad),
        "Cannot read targetRef. Reason: Unhandled targetRef example.com/v1 / App / bad, last \
         error unable to parse requirement: found '', expected: ',' or ')'"
    );
    let busy = fetch(&fake, &TargetRef::new("example.com/v1", "App", "busy"))
        .await
        .unwrap_err();
    assert!(busy.is_transient());
    assert_eq!(busy.stage(), Stage::Selector);
    let version = fetch(&fake, &TargetRef::new("a/b/c", "App", "x")).await;
    assert_eq!(
        msg(version),
        "Cannot read targetRef. Reason: unexpected GroupVersion string: a/b/c"
    );
}

// ----- resolution: topmost stage ------------------------------------------------------

#[tokio::test]
async fn replica_set_owned_by_a_deployment_has_a_parent() {
    let fake = Fake::default();
    fake.deployment("d", None);
    fake.object(
        WellKnownKind::ReplicaSet,
        "rs",
        Ok(ObjectInfo {
            selector: Ok(app("d")),
            controller: owner("apps/v1", "Deployment", "d"),
        }),
    );
    let err = fetch(&fake, &TargetRef::new("apps/v1", "ReplicaSet", "rs"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        TargetError::HasParent {
            target: "apps/v1.ReplicaSet/rs".into(),
            parent: "apps/v1.Deployment/d".into()
        }
    );
    assert_eq!(
        err.condition_message(),
        "The target apps/v1.ReplicaSet/rs has a parent controller but it should point to a \
         topmost well-known or scalable controller"
    );
}

#[tokio::test]
async fn missing_well_known_parent_is_an_error_checking_topmost() {
    let fake = Fake::default();
    fake.object(
        WellKnownKind::ReplicaSet,
        "rs",
        Ok(ObjectInfo {
            selector: Ok(app("d")),
            controller: owner("apps/v1", "Deployment", "d"),
        }),
    );
    let err = fetch(&fake, &TargetRef::new("apps/v1", "ReplicaSet", "rs"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TargetError::NotFound {
            stage: Stage::Topmost,
            ..
        }
    ));
    assert_eq!(
        err.condition_message(),
        "Error checking if target apps/v1.ReplicaSet/rs is a topmost well-known or scalable \
         controller: Deployment ns/d does not exist"
    );
}

#[tokio::test]
async fn scalable_ancestors_count_and_unscalable_owners_end_the_walk() {
    let fake = Fake::default();
    // Deployment owned by a scalable custom resource: a parent.
    fake.deployment(
        "under-rollout",
        owner("argoproj.io/v1alpha1", "Rollout", "ro"),
    );
    fake.scale(
        "argoproj.io",
        "Rollout",
        "ro",
        Ok(ScaleInfo {
            selector: Some("app=x".into()),
            controller: None,
        }),
    );
    let err = fetch(
        &fake,
        &TargetRef::new("apps/v1", "Deployment", "under-rollout"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        TargetError::HasParent {
            target: "apps/v1.Deployment/under-rollout".into(),
            parent: "argoproj.io/v1alpha1.Rollout/ro".into()
        }
    );

    // Owner without /scale (or whose /scale is 404): the walk ends, the target is topmost.
    fake.deployment("under-app", owner("example.com/v1", "App", "a"));
    fake.scale("example.com", "App", "a", Err(ScaleError::NoScale));
    assert!(
        fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "under-app"))
            .await
            .is_ok()
    );
    fake.deployment("under-gone", owner("example.com/v1", "Scalable", "gone"));
    fake.scale(
        "example.com",
        "Scalable",
        "gone",
        Err(ScaleError::Fetch(FetchError::NotFound("not found".into()))),
    );
    assert!(
        fetch(
            &fake,
            &TargetRef::new("apps/v1", "Deployment", "under-gone")
        )
        .await
        .is_ok()
    );

    // The topmost one is reported: Deployment -> ReplicaSet-like scalable -> Deployment.
    fake.deployment("top", None);
    fake.scale(
        "example.com",
        "Middle",
        "m",
        Ok(ScaleInfo {
            selector: Some("app=m".into()),
            controller: owner("apps/v1", "Deployment", "top"),
        }),
    );
    fake.deployment("bottom", owner("example.com/v1", "Middle", "m"));
    let err = fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "bottom"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TargetError::HasParent { parent, .. } if parent == "apps/v1.Deployment/top"),
        "{err:?}"
    );
}

#[tokio::test]
async fn owner_chain_errors() {
    let fake = Fake::default();
    // Unknown owner kind: upstream's mapper error.
    fake.deployment("d1", owner("example.com/v1", "Mystery", "m"));
    assert_eq!(
        msg(fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "d1")).await),
        "Error checking if target apps/v1.Deployment/d1 is a topmost well-known or scalable \
         controller: Unhandled targetRef example.com/v1 / Mystery / m, last error no matches \
         for kind \"Mystery\" in group \"example.com\""
    );
    // Node owner.
    fake.deployment("d2", owner("v1", "Node", "n1"));
    assert_eq!(
        msg(fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "d2")).await),
        "Error checking if target apps/v1.Deployment/d2 is a topmost well-known or scalable \
         controller: Unhandled targetRef v1 / Node / n1, last error node is not a valid owner"
    );
    // A cycle: d3 -> Loop/l -> d3.
    fake.deployment("d3", owner("example.com/v1", "Loop", "l"));
    fake.scale(
        "example.com",
        "Loop",
        "l",
        Ok(ScaleInfo {
            selector: Some("app=l".into()),
            controller: owner("apps/v1", "Deployment", "d3"),
        }),
    );
    let err = fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "d3"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        TargetError::Failed {
            stage: Stage::Topmost,
            ..
        }
    ));
    assert!(
        err.condition_message()
            .ends_with(": Cycle detected in ownership chain")
    );
    // Transient failure while walking.
    fake.deployment("d4", owner("example.com/v1", "Flaky", "f"));
    fake.scale(
        "example.com",
        "Flaky",
        "f",
        Err(ScaleError::Fetch(FetchError::Transient(
            "connection reset".into(),
        ))),
    );
    let err = fetch(&fake, &TargetRef::new("apps/v1", "Deployment", "d4"))
        .await
        .unwrap_err();
    assert!(err.is_transient());
    assert_eq!(err.stage(), Stage::Topmost);
}

#[test]
fn condition_messages() {
    let t = "apps/v1.Deployment/x".to_string();
    let cases = [
        (
            TargetError::NotFound {
                target: t.clone(),
                reason: "Deployment ns/x does not exist".into(),
                stage: Stage::Selector,
            },
            "Cannot read targetRef. Reason: Deployment ns/x does not exist",
        ),
        (
            TargetError::Transient {
                target: t.clone(),
                reason: "Deployment ns/x could not be read: timeout".into(),
                stage: Stage::Selector,
            },
            "Cannot read targetRef. Reason: Deployment ns/x could not be read: timeout",
        ),
        (
            TargetError::Failed {
                target: t.clone(),
                reason: "Cycle detected in ownership chain".into(),
                stage: Stage::Topmost,
            },
            "Error checking if target apps/v1.Deployment/x is a topmost well-known or scalable \
             controller: Cycle detected in ownership chain",
        ),
        (
            TargetError::HasParent {
                target: t.clone(),
                parent: "argoproj.io/v1alpha1.Rollout/r".into(),
            },
            "The target apps/v1.Deployment/x has a parent controller but it should point to a \
             topmost well-known or scalable controller",
        ),
    ];
    for (err, want) in cases {
        assert_eq!(err.condition_message(), want);
        assert_eq!(err.to_string(), want, "Display is the condition message");
        assert_eq!(err.target(), t);
    }
    assert_eq!(
        TargetRef::from(&CrossVersionObjectReference {
            api_version: None,
            kind: "Deployment".into(),
            name: "x".into()
        })
        .to_string(),
        ".Deployment/x"
    );
}

// ----- the cache state machine ---------------------------------------------------------

fn opts() -> ResolverOptions {
    ResolverOptions::default()
}

fn good(v: &str) -> Resolved {
    Resolved {
        selector: app(v),
        kind: "Deployment".into(),
        api_version: "apps/v1".into(),
        name: "d".into(),
    }
}

fn transient() -> TargetError {
    TargetError::Transient {
        target: "apps/v1.Deployment/d".into(),
        reason: "timeout".into(),
        stage: Stage::Selector,
    }
}

fn not_found() -> TargetError {
    TargetError::NotFound {
        target: "apps/v1.Deployment/d".into(),
        reason: "Deployment ns/d does not exist".into(),
        stage: Stage::Selector,
    }
}

fn key() -> CacheKey {
    CacheKey::new(NS, &TargetRef::new("apps/v1", "Deployment", "d"))
}

const fn s(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

#[test]
fn cache_fresh_stale_expired() {
    let t0 = Instant::now();
    let mut c = TargetCache::new(opts());
    let k = key();
    assert_eq!(c.plan(&k, t0), Plan::Fetch, "empty cache fetches");
    assert_eq!(c.exists(&k), None);
    assert_eq!(c.record(&k, Ok(good("a")), t0), Ok(good("a")));
    assert_eq!(c.exists(&k), Some(true));
    assert_eq!(c.plan(&k, t0 + s(59)), Plan::Cached(Ok(good("a"))), "fresh");
    assert_eq!(
        c.plan(&k, t0 + s(60)),
        Plan::ServeStaleAndRefresh(good("a")),
        "stale: served, refreshed in the background"
    );
    assert_eq!(
        c.plan(&k, t0 + s(61)),
        Plan::Cached(Ok(good("a"))),
        "one background refresh at a time"
    );
    assert_eq!(
        c.plan(&k, t0 + s(121)),
        Plan::ServeStaleAndRefresh(good("a")),
        "a refresh that never reported is retried after refresh_after"
    );
    assert_eq!(
        c.plan(&k, t0 + s(600)),
        Plan::Fetch,
        "expired: fetch before answering"
    );
    assert_eq!(c.record(&k, Ok(good("b")), t0 + s(600)), Ok(good("b")));
    assert_eq!(c.plan(&k, t0 + s(601)), Plan::Cached(Ok(good("b"))));
}

#[test]
fn cache_transient_failure_keeps_last_good() {
    let t0 = Instant::now();
    let mut c = TargetCache::new(opts());
    let k = key();
    c.record(&k, Ok(good("a")), t0).unwrap();
    // A background refresh fails transiently: the good result stays.
    assert_eq!(
        c.plan(&k, t0 + s(70)),
        Plan::ServeStaleAndRefresh(good("a"))
    );
    assert_eq!(c.record(&k, Err(transient()), t0 + s(70)), Ok(good("a")));
    assert_eq!(
        c.plan(&k, t0 + s(75)),
        Plan::Cached(Ok(good("a"))),
        "backoff"
    );
    assert_eq!(
        c.plan(&k, t0 + s(80)),
        Plan::ServeStaleAndRefresh(good("a"))
    );
    // Long outage: even past cache_ttl a transient failure answers with the last good.
    assert_eq!(c.plan(&k, t0 + s(3600)), Plan::Fetch);
    assert_eq!(c.record(&k, Err(transient()), t0 + s(3600)), Ok(good("a")));
    assert_eq!(c.plan(&k, t0 + s(3605)), Plan::Cached(Ok(good("a"))));
    assert_eq!(c.exists(&k), Some(true));
    // Without a good result a transient failure is an error, cached for error_ttl only.
    let k2 = CacheKey::new(NS, &TargetRef::new("apps/v1", "Deployment", "other"));
    assert_eq!(c.record(&k2, Err(transient()), t0), Err(transient()));
    assert_eq!(c.plan(&k2, t0 + s(5)), Plan::Cached(Err(transient())));
    assert_eq!(c.plan(&k2, t0 + s(10)), Plan::Fetch);
    assert_eq!(c.exists(&k2), None, "transient failures say nothing");
}

#[test]
fn cache_permanent_failure_cached_for_error_ttl() {
    let t0 = Instant::now();
    let mut c = TargetCache::new(opts());
    let k = key();
    c.record(&k, Ok(good("a")), t0).unwrap();
    assert_eq!(
        c.record(&k, Err(not_found()), t0 + s(600)),
        Err(not_found())
    );
    assert_eq!(c.exists(&k), Some(false));
    assert_eq!(c.plan(&k, t0 + s(609)), Plan::Cached(Err(not_found())));
    assert_eq!(
        c.plan(&k, t0 + s(610)),
        Plan::Fetch,
        "retried after error_ttl"
    );
    assert_eq!(c.record(&k, Ok(good("b")), t0 + s(610)), Ok(good("b")));
    assert_eq!(c.exists(&k), Some(true));
}

#[test]
fn cache_drops_entries_not_used_for_forget_after() {
    let t0 = Instant::now();
    let mut c = TargetCache::new(opts());
    c.record(&key(), Ok(good("a")), t0).unwrap();
    let other = CacheKey::new(NS, &TargetRef::new("apps/v1", "Deployment", "o"));
    c.plan(&other, t0);
    c.record(&other, Ok(good("o")), t0).unwrap();
    c.plan(&other, t0 + s(3000));
    assert_eq!(c.len(), 2);
    c.plan(&other, t0 + s(3700));
    assert_eq!(c.len(), 1, "the unused entry is gone");
    assert_eq!(c.exists(&key()), None);
}

// ----- the resolver over a fake source ---------------------------------------------------

#[tokio::test]
async fn resolver_serves_stale_while_refreshing_in_background() {
    let fake = Fake::default();
    fake.deployment("d", None);
    let core = Arc::new(Core::new(fake.clone(), opts()));
    let t = TargetRef::new("apps/v1", "Deployment", "d");
    let t0 = Instant::now();
    assert_eq!(core.resolve(NS, &t, t0).await.unwrap().selector, app("d"));
    assert_eq!(
        core.resolve(NS, &t, t0 + s(30)).await.unwrap().selector,
        app("d")
    );
    assert_eq!(fake.calls(), 1, "fresh results make no API call");
    assert_eq!(core.exists_cached(NS, &t), Some(true));

    // The Deployment's selector changes; a stale answer comes at once, the refresh follows.
    fake.object(
        WellKnownKind::Deployment,
        "d",
        Ok(ObjectInfo {
            selector: Ok(app("new")),
            controller: None,
        }),
    );
    assert_eq!(
        core.resolve(NS, &t, t0 + s(90)).await.unwrap().selector,
        app("d")
    );
    for _ in 0..100 {
        if fake.calls() == 2 {
            break;
        }
        tokio::task::yield_now().await;
    }
    tokio::task::yield_now().await;
    assert_eq!(fake.calls(), 2);
    assert_eq!(
        core.resolve(NS, &t, t0 + s(91)).await.unwrap().selector,
        app("new")
    );

    // An outage: the last good selector is kept (upstream #9891).
    fake.object(
        WellKnownKind::Deployment,
        "d",
        Err(FetchError::Transient("503".into())),
    );
    assert_eq!(
        core.resolve(NS, &t, t0 + s(2000)).await.unwrap().selector,
        app("new")
    );
    assert_eq!(core.exists_cached(NS, &t), Some(true));

    // Deleted: NotFound, cached for error_ttl.
    lock(&fake.world).objects.clear();
    let calls = fake.calls();
    let err = core.resolve(NS, &t, t0 + s(2020)).await.unwrap_err();
    assert!(matches!(err, TargetError::NotFound { .. }));
    assert_eq!(core.exists_cached(NS, &t), Some(false));
    assert!(core.resolve(NS, &t, t0 + s(2025)).await.is_err());
    assert_eq!(
        fake.calls(),
        calls + 1,
        "the permanent failure is served from the cache"
    );
}
