//! The VPA validator: upstream's validation and defaulting ([`vpa_core::validation`]) on the
//! untyped object, so that values the typed API cannot hold get upstream's messages.

use crate::hooks::{Mutation, Verdict, VpaValidator};
use kube::api::DynamicObject;
use kube::core::admission::AdmissionRequest;
use vpa_core::features::FeatureGates;
use vpa_core::patch::to_json_patch;
use vpa_core::validation::review_vpa;

/// Validates VPAs with the admission controller's feature gates.
#[derive(Debug, Clone, Default)]
pub struct Validator {
    gates: FeatureGates,
}

impl Validator {
    /// A validator for these gates.
    pub fn new(gates: FeatureGates) -> Self {
        Self { gates }
    }

    /// The verdict for a VPA (`old` on UPDATE), as JSON.
    pub fn verdict(&self, object: &serde_json::Value, old: Option<&serde_json::Value>) -> Verdict {
        let review = review_vpa(object, old, &self.gates);
        if !review.errors.is_empty() {
            return Verdict::Deny {
                errors: review.errors.iter().map(ToString::to_string).collect(),
                warnings: review.warnings,
            };
        }
        match to_json_patch(&review.patches) {
            Ok(patch) => Verdict::Allow(Mutation {
                patch,
                warnings: review.warnings,
            }),
            Err(e) => Verdict::Allow(Mutation::unchanged().warn(format!(
                "vpa-admission: cannot encode the defaults ({e}); VPA not defaulted"
            ))),
        }
    }
}

impl VpaValidator for Validator {
    fn validate(&self, req: &AdmissionRequest<DynamicObject>) -> Verdict {
        let to_json = |o: &DynamicObject| serde_json::to_value(o).ok();
        let Some(object) = req.object.as_ref().and_then(to_json) else {
            return Verdict::Allow(Mutation::unchanged().warn(
                "vpa-admission: the review carries no VerticalPodAutoscaler; not validated",
            ));
        };
        let old = req.old_object.as_ref().and_then(to_json);
        self.verdict(&object, old.as_ref())
    }
}
