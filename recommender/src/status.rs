//! The VPA status the recommender writes: conversion between the pure recommendation and
//! conditions and the API's `VerticalPodAutoscalerStatus`, and the semantic comparison that
//! decides whether a write is needed (upstream `utils/vpa/api.go`). Quantities compare by
//! value and times by whole seconds, so a status written by upstream in another notation
//! does not cause a rewrite.

use std::collections::BTreeMap;
use vpa_core::api::vpa::{
    RecommendedContainerResources, RecommendedPodResources, ResourceList,
    VerticalPodAutoscalerCondition, VerticalPodAutoscalerStatus,
};
use vpa_core::checkpoint::{from_time, to_time};
use vpa_core::conditions::{Condition, Conditions};
use vpa_core::quantity;
use vpa_core::recommendation::{ContainerRecommendation, Quantities};
use vpa_core::time::Timestamp;

/// What a status is made of.
#[derive(Debug)]
pub struct StatusParts<'a> {
    /// Per-container recommendations, sorted by name.
    pub recommendation: &'a [ContainerRecommendation],
    /// Conditions.
    pub conditions: &'a Conditions,
    /// `metadata.generation` of the VPA.
    pub observed_generation: Option<i64>,
}

fn resource_list(q: &Quantities) -> ResourceList {
    let mut out = BTreeMap::new();
    if let Some(cpu) = &q.cpu {
        out.insert(
            "cpu".to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(cpu.to_string()),
        );
    }
    if let Some(mem) = &q.memory {
        out.insert(
            "memory".to_string(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity(mem.to_string()),
        );
    }
    out
}

/// The API status for these parts. The recommendation is always present (empty when no
/// container has one), as upstream writes it; conditions are sorted by type.
pub fn to_api(parts: &StatusParts<'_>) -> VerticalPodAutoscalerStatus {
    let containers = parts
        .recommendation
        .iter()
        .map(|r| RecommendedContainerResources {
            container_name: Some(r.container_name.clone()),
            target: resource_list(&r.target),
            lower_bound: Some(resource_list(&r.lower_bound)),
            upper_bound: Some(resource_list(&r.upper_bound)),
            uncapped_target: Some(resource_list(&r.uncapped_target)),
        })
        .collect::<Vec<_>>();
    let conditions = parts
        .conditions
        .0
        .iter()
        .map(|(kind, c)| VerticalPodAutoscalerCondition {
            type_: kind.clone(),
            status: if c.status { "True" } else { "False" }.to_string(),
            last_transition_time: to_time(Some(c.last_transition_time)),
            reason: (!c.reason.is_empty()).then(|| c.reason.clone()),
            message: (!c.message.is_empty()).then(|| c.message.clone()),
            observed_generation: None,
        })
        .collect::<Vec<_>>();
    VerticalPodAutoscalerStatus {
        recommendation: Some(RecommendedPodResources {
            container_recommendations: (!containers.is_empty()).then_some(containers),
        }),
        conditions: (!conditions.is_empty()).then_some(conditions),
        observed_generation: parts.observed_generation,
    }
}

/// The observed conditions as the pure set (status `True` is true, anything else false; a
/// missing transition time reads as the Unix epoch).
pub fn conditions_from_api(status: Option<&VerticalPodAutoscalerStatus>) -> Conditions {
    let mut out = Conditions::default();
    for c in status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
    {
        out.0.insert(
            c.type_.clone(),
            Condition {
                status: c.status == "True",
                last_transition_time: from_time(c.last_transition_time.as_ref())
                    .unwrap_or(Timestamp::UNIX_EPOCH),
                reason: c.reason.clone().unwrap_or_default(),
                message: c.message.clone().unwrap_or_default(),
            },
        );
    }
    out
}

fn canonical_list(list: Option<&ResourceList>) -> BTreeMap<String, String> {
    list.into_iter()
        .flatten()
        .map(|(k, v)| {
            let canonical = quantity::parse(&v.0)
                .map(|q| q.to_string())
                .unwrap_or_else(|_| v.0.clone());
            (k.clone(), canonical)
        })
        .collect()
}

type CanonicalContainer = (Option<String>, [BTreeMap<String, String>; 4]);

fn canonical_recommendation(s: &VerticalPodAutoscalerStatus) -> Option<Vec<CanonicalContainer>> {
    let rec = s.recommendation.as_ref()?;
    let mut containers: Vec<CanonicalContainer> = rec
        .container_recommendations
        .iter()
        .flatten()
        .map(|c| {
            (
                c.container_name.clone(),
                [
                    canonical_list(Some(&c.target)),
                    canonical_list(c.lower_bound.as_ref()),
                    canonical_list(c.upper_bound.as_ref()),
                    canonical_list(c.uncapped_target.as_ref()),
                ],
            )
        })
        .collect();
    containers.sort();
    Some(containers)
}

type CanonicalCondition = (String, String, Option<i64>, String, String);

fn canonical_conditions(s: &VerticalPodAutoscalerStatus) -> Vec<CanonicalCondition> {
    let mut out: Vec<CanonicalCondition> = s
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            (
                c.type_.clone(),
                c.status.clone(),
                from_time(c.last_transition_time.as_ref()).map(|t| t.unix_seconds()),
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
        .collect();
    out.sort();
    out
}

/// Whether the observed status already says what `new` says. An empty recommendation and a
/// missing one differ (upstream writes `{}`).
pub fn semantically_equal(
    observed: Option<&VerticalPodAutoscalerStatus>,
    new: &VerticalPodAutoscalerStatus,
) -> bool {
    let Some(old) = observed else {
        return false;
    };
    old.observed_generation == new.observed_generation
        && canonical_recommendation(old) == canonical_recommendation(new)
        && canonical_conditions(old) == canonical_conditions(new)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;

    fn rec(name: &str, cpu: &str, mem: &str) -> ContainerRecommendation {
        let q = Quantities {
            cpu: Some(quantity::parse(cpu).unwrap()),
            memory: Some(quantity::parse(mem).unwrap()),
        };
        ContainerRecommendation {
            container_name: name.to_string(),
            target: q.clone(),
            lower_bound: q.clone(),
            upper_bound: q.clone(),
            uncapped_target: q,
        }
    }

    #[test]
    fn round_trip_is_equal_and_changes_are_seen() {
        let mut c = Conditions::default();
        c.set(
            "RecommendationProvided",
            true,
            "",
            "",
            Timestamp::from_unix_seconds(1_800_000_000),
        );
        let recs = [rec("app", "250m", "262144k")];
        let s = to_api(&StatusParts {
            recommendation: &recs,
            conditions: &c,
            observed_generation: Some(3),
        });
        assert!(semantically_equal(Some(&s), &s));
        assert!(!semantically_equal(None, &s));
        // Same values in another notation: equal.
        let mut other = s.clone();
        let set_cpu = |st: &mut VerticalPodAutoscalerStatus, v: &str| {
            let cr = &mut st
                .recommendation
                .as_mut()
                .unwrap()
                .container_recommendations
                .as_mut()
                .unwrap()[0];
            cr.target.insert("cpu".into(), ApiQuantity(v.into()));
        };
        set_cpu(&mut other, "0.25");
        assert!(semantically_equal(Some(&other), &s));
        // Another value: differs.
        set_cpu(&mut other, "251m");
        assert!(!semantically_equal(Some(&other), &s));
        // Another generation: differs.
        let mut g = s.clone();
        g.observed_generation = Some(4);
        assert!(!semantically_equal(Some(&g), &s));
        // Conditions read back identically.
        assert_eq!(conditions_from_api(Some(&s)), c);
    }

    #[test]
    fn empty_recommendation_is_written_as_empty_object() {
        let s = to_api(&StatusParts {
            recommendation: &[],
            conditions: &Conditions::default(),
            observed_generation: None,
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json, serde_json::json!({"recommendation": {}}));
        let without = VerticalPodAutoscalerStatus::default();
        assert!(!semantically_equal(Some(&without), &s));
    }
}
