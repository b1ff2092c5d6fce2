//! The `VerticalPodAutoscalerCheckpoint` custom resource (`autoscaling.k8s.io/v1`).
//!
//! The recommender saves the aggregated usage histograms of each (VPA, container) pair in one of
//! these objects, so that a restarted recommender can pick up where the last one stopped. The
//! serialised form must stay loadable by upstream's recommender and the other way round, so it
//! follows Go's `encoding/json` output of upstream's types:
//!
//! * times are `metav1.Time` (RFC 3339, whole seconds) and a zero time is written as `null`; here
//!   an unset time is `None`, and it is always written, as `null`;
//! * `bucketWeights` maps the bucket index, as a decimal string key, to its weight;
//! * `totalWeight` is a float64, which Go writes without a fractional part when it is whole
//!   (`10000`, not `10000.0`); we write it the same way.
//!
//! Unlike the `VerticalPodAutoscaler`, this resource has no status subresource: the whole object,
//! status included, is written with ordinary create, update or patch calls. (The derive below
//! still generates `HasStatus`; the subresource is removed from the CRD by [`crate::api::crds`].)

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::schema;

/// The only checkpoint format version upstream reads and writes.
pub const CHECKPOINT_VERSION: &str = "v3";

/// Which container of which `VerticalPodAutoscaler` a checkpoint belongs to.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "autoscaling.k8s.io",
    version = "v1",
    kind = "VerticalPodAutoscalerCheckpoint",
    namespaced,
    shortname = "vpacheckpoint",
    status = "VerticalPodAutoscalerCheckpointStatus",
    derive = "PartialEq",
    annotation(
        "api-approved.kubernetes.io",
        "https://github.com/kubernetes/kubernetes/pull/63797"
    ),
    doc = "A VerticalPodAutoscalerCheckpoint holds the recommender's aggregated usage history for \
           one container of one VerticalPodAutoscaler, so that it survives a recommender restart."
)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerCheckpointSpec {
    /// The name of the `VerticalPodAutoscaler` this checkpoint belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpa_object_name: Option<String>,

    /// The name of the container whose history this is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
}

/// The saved state: both histograms and the sample counters.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerticalPodAutoscalerCheckpointStatus {
    /// When this status was last written. Written as `null` when unset.
    pub last_update_time: Option<Time>,

    /// The format version of the saved data; `v3` is the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,

    /// The CPU usage histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_histogram: Option<HistogramCheckpoint>,

    /// The memory peak histogram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_histogram: Option<HistogramCheckpoint>,

    /// The start of the oldest sample in the histograms. Written as `null` when unset.
    pub first_sample_start: Option<Time>,

    /// The start of the newest sample in the histograms. Written as `null` when unset.
    pub last_sample_start: Option<Time>,

    /// How many samples the histograms hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::integer")]
    pub total_samples_count: Option<i64>,
}

/// One histogram, saved as the weights of its non-empty buckets.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistogramCheckpoint {
    /// The reference time of the decaying histogram: sample weights are relative to it. Written
    /// as `null` when unset.
    pub reference_timestamp: Option<Time>,

    /// The weight of each non-empty bucket, keyed by the bucket index. The weights are scaled so
    /// that the largest is 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "schema::preserve_unknown_object")]
    pub bucket_weights: Option<BTreeMap<u32, u32>>,

    /// The total weight of the histogram before scaling: the denominator of `bucketWeights`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "go_float::serialize"
    )]
    #[schemars(schema_with = "schema::number")]
    pub total_weight: Option<f64>,
}

/// Writes a float64 the way Go's `encoding/json` does where the two could differ in value type:
/// a whole number without a fractional part, so that `10000` stays an integer in JSON.
mod go_float {
    use serde::Serializer;

    /// Whole numbers up to this size are exact in both `f64` and `i64`.
    const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;

    #[allow(clippy::ref_option)] // serde's `serialize_with` passes `&Option<f64>`.
    pub(super) fn serialize<S: Serializer>(
        value: &Option<f64>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match *value {
            Some(v) if v.fract() == 0.0 && v.abs() <= MAX_EXACT_INTEGER => {
                // The range check above makes the conversion exact.
                #[allow(clippy::cast_possible_truncation)]
                let whole = v as i64;
                serializer.serialize_i64(whole)
            }
            Some(v) => serializer.serialize_f64(v),
            None => serializer.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    /// A checkpoint as upstream's recommender writes it (shape from `checkpoint_writer.go`), with
    /// one histogram that has never seen a sample.
    fn upstream_checkpoint() -> serde_json::Value {
        json!({
            "apiVersion": "autoscaling.k8s.io/v1",
            "kind": "VerticalPodAutoscalerCheckpoint",
            "metadata": {
                "name": "hamster-vpa-hamster",
                "namespace": "default",
                "resourceVersion": "4711",
                "creationTimestamp": "2025-05-30T08:00:00Z"
            },
            "spec": {"vpaObjectName": "hamster-vpa", "containerName": "hamster"},
            "status": {
                "lastUpdateTime": "2025-06-01T12:34:56Z",
                "version": "v3",
                "cpuHistogram": {
                    "referenceTimestamp": "2025-06-01T00:00:00Z",
                    "bucketWeights": {"25": 10000, "26": 137},
                    "totalWeight": 123.4
                },
                "memoryHistogram": {
                    "referenceTimestamp": null,
                    "bucketWeights": {"3": 10000},
                    "totalWeight": 10000
                },
                "firstSampleStart": null,
                "lastSampleStart": "2025-06-01T12:34:00Z",
                "totalSamplesCount": 1543
            }
        })
    }

    #[test]
    fn upstream_checkpoint_round_trips() {
        let input = upstream_checkpoint();
        let checkpoint: VerticalPodAutoscalerCheckpoint =
            serde_json::from_value(input.clone()).unwrap();
        let status = checkpoint.status.as_ref().unwrap();
        let cpu = status.cpu_histogram.as_ref().unwrap();
        assert_eq!(cpu.bucket_weights.as_ref().unwrap()[&25], 10000);
        assert_eq!(cpu.bucket_weights.as_ref().unwrap()[&26], 137);
        assert_eq!(cpu.total_weight, Some(123.4));
        assert!(status.first_sample_start.is_none());
        assert_eq!(status.version.as_deref(), Some(CHECKPOINT_VERSION));
        assert_eq!(status.total_samples_count, Some(1543));
        assert_eq!(serde_json::to_value(&checkpoint).unwrap(), input);
    }

    #[test]
    fn unset_times_are_written_as_null() {
        let status = VerticalPodAutoscalerCheckpointStatus {
            cpu_histogram: Some(HistogramCheckpoint::default()),
            ..VerticalPodAutoscalerCheckpointStatus::default()
        };
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({
                "lastUpdateTime": null,
                "cpuHistogram": {"referenceTimestamp": null},
                "firstSampleStart": null,
                "lastSampleStart": null
            })
        );
        // Missing keys read as unset, like `null`.
        let read: VerticalPodAutoscalerCheckpointStatus =
            serde_json::from_value(json!({})).unwrap();
        assert_eq!(read, VerticalPodAutoscalerCheckpointStatus::default());
    }

    #[test]
    fn times_have_second_precision() {
        let status: VerticalPodAutoscalerCheckpointStatus =
            serde_json::from_value(json!({"lastUpdateTime": "2025-06-01T12:34:56.789Z"})).unwrap();
        assert_eq!(
            serde_json::to_value(&status).unwrap()["lastUpdateTime"],
            "2025-06-01T12:34:56Z"
        );
    }

    #[test]
    fn total_weight_is_written_like_go() {
        for (weight, expected) in [
            (10000.0, json!(10000)),
            (0.0, json!(0)),
            (123.4, json!(123.4)),
            (-2.0, json!(-2)),
            (1e300, json!(1e300)),
        ] {
            let histogram = HistogramCheckpoint {
                total_weight: Some(weight),
                ..HistogramCheckpoint::default()
            };
            assert_eq!(
                serde_json::to_value(&histogram).unwrap()["totalWeight"],
                expected,
                "{weight}"
            );
        }
    }

    #[test]
    fn nullable_schema_paths_are_the_fields_written_as_null() {
        // Every property that our serialisation can write as `null` must be nullable in the CRD,
        // and no other: keep `schema::CHECKPOINT_NULLABLE` in step with the fields above.
        let status = VerticalPodAutoscalerCheckpointStatus {
            cpu_histogram: Some(HistogramCheckpoint::default()),
            memory_histogram: Some(HistogramCheckpoint::default()),
            ..VerticalPodAutoscalerCheckpointStatus::default()
        };
        let value = json!({"status": serde_json::to_value(&status).unwrap()});
        let mut null_paths = Vec::new();
        collect_null_paths(&value, "", &mut null_paths);
        null_paths.sort();
        let mut expected: Vec<String> = schema::CHECKPOINT_NULLABLE
            .iter()
            .map(|path| (*path).to_owned())
            .collect();
        expected.sort();
        assert_eq!(null_paths, expected);
    }

    fn collect_null_paths(value: &serde_json::Value, prefix: &str, out: &mut Vec<String>) {
        if let serde_json::Value::Object(map) = value {
            for (key, child) in map {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                if child.is_null() {
                    out.push(path);
                } else {
                    collect_null_paths(child, &path, out);
                }
            }
        }
    }
}
