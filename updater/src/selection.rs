//! Which VPAs a loop handles and which VPA controls a pod (upstream `RunOnce`'s VPA filter
//! and `GetControllingVPAForPod`), for the parts that need no API access.
//!
//! A VPA is handled when its namespace passes `--vpa-object-namespace` /
//! `--ignored-vpa-object-namespaces` and its mode changes pods (`Recreate`, `Auto`,
//! `InPlaceOrRecreate`, `InPlace`) or it has a startup boost. Among the handled VPAs whose
//! targetRef names the pod's topmost owner and whose selector matches the pod (resolved by
//! the edge), the oldest controls it; equal creation times go to the smaller name.

use crate::startup_boost::has_startup_boost;
use crate::view::VpaView;
use vpa_core::time::Timestamp;

/// `--vpa-object-namespace` and `--ignored-vpa-object-namespaces`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamespaceFilter {
    /// Only this namespace, when set.
    pub only: Option<String>,
    /// Namespaces whose VPAs are skipped.
    pub ignored: Vec<String>,
}

impl NamespaceFilter {
    /// From the flag values (empty: not set; the ignored list is comma-separated).
    pub fn from_flags(vpa_object_namespace: &str, ignored_vpa_object_namespaces: &str) -> Self {
        NamespaceFilter {
            only: (!vpa_object_namespace.is_empty()).then(|| vpa_object_namespace.to_string()),
            ignored: ignored_vpa_object_namespaces
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        }
    }

    /// True when VPAs of `namespace` are handled.
    pub fn allows(&self, namespace: &str) -> bool {
        self.only.as_deref().is_none_or(|o| o == namespace)
            && !self.ignored.iter().any(|i| i == namespace)
    }
}

/// True when the loop handles this VPA (its namespace aside).
pub fn is_handled(vpa: &VpaView) -> bool {
    vpa.mode.updates_pods() || has_startup_boost(vpa)
}

/// The index of the controlling VPA among candidates `(name, creationTimestamp)` that all
/// match the pod: the oldest, then the smallest name.
pub fn strongest<'a>(
    candidates: impl IntoIterator<Item = (&'a str, Option<Timestamp>)>,
) -> Option<usize> {
    candidates
        .into_iter()
        .enumerate()
        .min_by(|(_, (na, ca)), (_, (nb, cb))| ca.cmp(cb).then_with(|| na.cmp(nb)))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{ContainerPolicyView, StartupBoostView, UpdateMode};

    #[test]
    fn namespace_filter() {
        let all = NamespaceFilter::from_flags("", "");
        assert!(all.allows("a"));
        let only = NamespaceFilter::from_flags("a", "");
        assert!(only.allows("a") && !only.allows("b"));
        let ignored = NamespaceFilter::from_flags("", "kube-system, b");
        assert!(ignored.allows("a") && !ignored.allows("b") && !ignored.allows("kube-system"));
    }

    #[test]
    fn handled_modes_and_boosts() {
        let mut vpa = VpaView::default();
        for (mode, handled) in [
            (UpdateMode::Off, false),
            (UpdateMode::Initial, false),
            (UpdateMode::Recreate, true),
            (UpdateMode::Auto, true),
            (UpdateMode::InPlaceOrRecreate, true),
            (UpdateMode::InPlace, true),
        ] {
            vpa.mode = mode;
            assert_eq!(is_handled(&vpa), handled, "{mode:?}");
        }
        vpa.mode = UpdateMode::Off;
        vpa.container_policies.push(ContainerPolicyView {
            container_name: "app".into(),
            startup_boost: Some(StartupBoostView::default()),
            ..Default::default()
        });
        assert!(is_handled(&vpa));
    }

    #[test]
    fn oldest_then_smallest_name_controls() {
        let t = Timestamp::from_unix_seconds;
        assert_eq!(strongest([]), None);
        assert_eq!(
            strongest([("b", Some(t(10))), ("c", Some(t(5))), ("a", Some(t(7)))]),
            Some(1)
        );
        assert_eq!(strongest([("b", Some(t(5))), ("a", Some(t(5)))]), Some(1));
        assert_eq!(strongest([("b", Some(t(5))), ("z", None)]), Some(1));
    }
}
