//! Start-up history for VPAs without checkpoints (`--storage=prometheus`): the pods and
//! samples a history provider returns are fed into the engine before the first cycle, in
//! time order per container, as upstream's `InitFromHistoryProvider` does. Pods are added
//! with phase Running (upstream: Unknown, which the model treats the same) and dropped
//! again by the next pod sync unless they still exist; their aggregates stay.

use crate::engine::{ContainerUsage, Engine, PodInput};
use std::collections::BTreeMap;
use vpa_core::labels::LabelSet;
use vpa_core::model::{ObjectId, PodPhase, ResourceKind, Resources, UsageSample};
use vpa_core::time::Timestamp;

/// One pod's history.
#[derive(Debug, Clone, Default)]
pub struct PodHistory {
    /// The pod's labels.
    pub labels: LabelSet,
    /// Samples per container, in time order.
    pub containers: BTreeMap<String, Vec<UsageSample>>,
}

/// Feeds history into the engine for the pods that `wanted` accepts (e.g. selected by a VPA
/// without a checkpoint). Returns the number of samples accepted.
pub fn feed_history(
    engine: &mut Engine,
    history: &BTreeMap<ObjectId, PodHistory>,
    now: Timestamp,
    wanted: impl Fn(&ObjectId, &LabelSet) -> bool,
) -> usize {
    let pods: Vec<PodInput> = history
        .iter()
        .filter(|(id, h)| wanted(id, &h.labels))
        .map(|(id, h)| PodInput {
            id: id.clone(),
            labels: h.labels.clone(),
            phase: PodPhase::Running,
            containers: h
                .containers
                .keys()
                .map(|c| (c.clone(), Resources::default()))
                .collect(),
        })
        .collect();
    // Next to the pods already in the model; the next pod sync drops those that are gone
    // (their aggregates stay).
    engine.add_pods(&pods, now);
    let mut accepted = 0;
    for pod in &pods {
        let Some(h) = history.get(&pod.id) else {
            continue;
        };
        for (container, samples) in &h.containers {
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| s.measure_start);
            let usage: Vec<ContainerUsage> = sorted
                .iter()
                .map(|s| ContainerUsage {
                    pod: pod.id.clone(),
                    container: container.clone(),
                    timestamp: s.measure_start,
                    cpu_millis: (s.resource == ResourceKind::Cpu).then_some(s.usage),
                    memory_bytes: (s.resource == ResourceKind::Memory).then_some(s.usage),
                })
                .collect();
            accepted += engine.add_usage(&usage).accepted;
        }
    }
    accepted
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::engine::{EngineSettings, SelectorState, VpaInput};
    use std::sync::Arc;
    use vpa_core::labels::Selector;
    use vpa_core::model::AggregationsConfig;
    use vpa_core::recommendation::OutputFormat;
    use vpa_core::recommender::PodResourceRecommender;

    #[test]
    fn history_gives_a_recommendation_before_any_metrics() {
        let mut e = Engine::new(EngineSettings {
            aggregations: Arc::new(AggregationsConfig::default()),
            recommender: PodResourceRecommender::default(),
            format: OutputFormat::default(),
            global_max_allowed: Resources::default(),
            integer_cpu: false,
            memory_saver: false,
            per_vpa_config: false,
        });
        e.sync_vpas(vec![VpaInput {
            id: ObjectId::new("ns", "v"),
            generation: None,
            selector: SelectorState::Resolved(Selector::new([("app", "a")], []).unwrap()),
            policy: None,
            config_error: None,
            annotations: Default::default(),
            observed: None,
            hpa_conflict: None,
        }]);
        let t0 = Timestamp::from_unix_seconds(1_800_000_000);
        let mut samples = Vec::new();
        for h in 0..48 {
            let t = t0.add(vpa_core::time::Duration::from_hours(h));
            // Out of order on purpose: memory first, then CPU.
            samples.push(UsageSample::memory(t, 300 << 20));
            samples.push(UsageSample::cpu(t, 500));
        }
        let mut history = BTreeMap::new();
        history.insert(
            ObjectId::new("ns", "old-pod"),
            PodHistory {
                labels: [("app".to_string(), "a".to_string())].into_iter().collect(),
                containers: [("c".to_string(), samples)].into_iter().collect(),
            },
        );
        history.insert(
            ObjectId::new("ns", "other"),
            PodHistory {
                labels: [("app".to_string(), "b".to_string())].into_iter().collect(),
                containers: [("c".to_string(), vec![UsageSample::cpu(t0, 1)])]
                    .into_iter()
                    .collect(),
            },
        );
        let n = feed_history(&mut e, &history, t0, |_, l| {
            l.get("app").map(String::as_str) == Some("a")
        });
        assert_eq!(n, 96);
        let r = e.recommendation(&ObjectId::new("ns", "v"), t0);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].target.cpu.as_ref().unwrap().to_string(), "587m");
        // The history pods no longer exist: their aggregates stay through the pod sync and
        // the first garbage collection.
        let later = t0.add(vpa_core::time::Duration::from_minutes(1));
        e.sync_pods(std::iter::empty(), later);
        e.garbage_collect(later, |_| true);
        let r = e.recommendation(&ObjectId::new("ns", "v"), later);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].target.cpu.as_ref().unwrap().to_string(), "587m");
    }
}
