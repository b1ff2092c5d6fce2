//! From estimates to what a VPA status holds: quantities with upstream's rounding and the
//! post-processors (integer CPU, policy capping), with `uncappedTarget` kept
//! (upstream `MapToListOfRecommendedContainerResources`, `routines/*_post_processor.go`).

use crate::model::{
    ResourceAmount, ResourceKind, Resources, humanize_memory_quantity, round_up_to_scale,
};
use crate::policy::{PodResourcePolicy, cap_resources};
use crate::quantity::{self, Quantity};
use crate::recommender::RecommendedContainerResources;
use std::collections::BTreeMap;

/// How amounts become quantities (`--round-cpu-millicores`, `--round-memory-bytes`,
/// `--humanize-memory`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFormat {
    /// Round CPU up to a multiple of this many millicores (1: no rounding).
    pub round_cpu_millicores: i64,
    /// Round memory up to a multiple of this many bytes (1: no rounding).
    pub round_memory_bytes: i64,
    /// Deprecated: memory as two-decimal binary units, re-parsed.
    pub humanize_memory: bool,
}

impl Default for OutputFormat {
    fn default() -> Self {
        Self {
            round_cpu_millicores: 1,
            round_memory_bytes: 1,
            humanize_memory: false,
        }
    }
}

/// CPU and memory as quantities.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Quantities {
    /// CPU.
    pub cpu: Option<Quantity>,
    /// Memory.
    pub memory: Option<Quantity>,
}

impl Quantities {
    /// The amounts (millicores, bytes) of these quantities.
    pub fn amounts(&self) -> Resources {
        Resources {
            cpu: self.cpu.as_ref().map(Quantity::milli_value),
            memory: self.memory.as_ref().map(Quantity::value),
        }
    }

    /// The quantity of one resource.
    pub fn get(&self, kind: ResourceKind) -> Option<&Quantity> {
        match kind {
            ResourceKind::Cpu => self.cpu.as_ref(),
            ResourceKind::Memory => self.memory.as_ref(),
        }
    }
}

/// One container's recommendation as written to `status.recommendation`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerRecommendation {
    /// Container name.
    pub container_name: String,
    /// Target.
    pub target: Quantities,
    /// Lower bound.
    pub lower_bound: Quantities,
    /// Upper bound.
    pub upper_bound: Quantities,
    /// Target before capping to the policy.
    pub uncapped_target: Quantities,
}

/// Amounts to quantities with the configured rounding. A non-positive rounding scale leaves
/// the value unrounded (upstream logs it).
pub fn to_quantities(r: &Resources, format: &OutputFormat) -> Quantities {
    let cpu = r.cpu.map(|v| {
        let v = if format.round_cpu_millicores != 1 && v != 0 {
            round_up_to_scale(v, format.round_cpu_millicores).unwrap_or(v)
        } else {
            v
        };
        Quantity::from_millis(v)
    });
    let memory = r.memory.map(|v| {
        let v = if format.round_memory_bytes != 1 && v != 0 {
            round_up_to_scale(v, format.round_memory_bytes).unwrap_or(v)
        } else {
            v
        };
        if format.humanize_memory && v != 0 {
            let text = humanize_memory_quantity(v);
            quantity::parse(&text).unwrap_or_else(|_| Quantity::from_bytes(v))
        } else {
            Quantity::from_bytes(v)
        }
    });
    Quantities { cpu, memory }
}

/// The recommendation of every container, sorted by name, before post-processing
/// (`uncapped_target` equals `target`).
pub fn to_container_recommendations(
    recs: &BTreeMap<String, RecommendedContainerResources>,
    format: &OutputFormat,
) -> Vec<ContainerRecommendation> {
    recs.iter()
        .map(|(name, r)| {
            let target = to_quantities(&r.target, format);
            ContainerRecommendation {
                container_name: name.clone(),
                uncapped_target: target.clone(),
                target,
                lower_bound: to_quantities(&r.lower_bound, format),
                upper_bound: to_quantities(&r.upper_bound, format),
            }
        })
        .collect()
}

/// Annotation prefix of the integer-CPU post-processor.
pub const INTEGER_CPU_ANNOTATION_PREFIX: &str = "vpa-post-processor.kubernetes.io/";
/// Annotation suffix of the integer-CPU post-processor.
pub const INTEGER_CPU_ANNOTATION_SUFFIX: &str = "_integerCPU";

/// `--cpu-integer-post-processor-enabled`: for containers whose VPA annotation
/// `vpa-post-processor.kubernetes.io/<container>_integerCPU` is exactly `"true"`, rounds CPU
/// up to whole cores in target, bounds and uncapped target.
pub fn apply_integer_cpu(
    recs: &mut [ContainerRecommendation],
    annotations: &BTreeMap<String, String>,
) {
    for rec in recs {
        let key = format!(
            "{INTEGER_CPU_ANNOTATION_PREFIX}{}{INTEGER_CPU_ANNOTATION_SUFFIX}",
            rec.container_name
        );
        if annotations.get(&key).map(String::as_str) != Some("true") {
            continue;
        }
        for q in [
            &mut rec.target,
            &mut rec.lower_bound,
            &mut rec.upper_bound,
            &mut rec.uncapped_target,
        ] {
            if let Some(cpu) = q.cpu.as_mut() {
                let milli = cpu.milli_value();
                let cores = milli.div_euclid(1000) + i64::from(milli.rem_euclid(1000) != 0);
                *cpu = Quantity::from_millis(cores.saturating_mul(1000));
            }
        }
    }
}

/// Caps target, lower and upper bound of every container to its policy's minAllowed and to
/// maxAllowed (the policy's, else the global maximum). `uncapped_target` is untouched.
/// Without a policy and without a global maximum nothing changes.
pub fn apply_vpa_policy(
    recs: &mut [ContainerRecommendation],
    policy: Option<&PodResourcePolicy>,
    global_max: &Resources,
) {
    if policy.is_none() && global_max.is_empty() {
        return;
    }
    for rec in recs {
        let container_policy = crate::policy::container_policy(policy, &rec.container_name);
        if container_policy.is_none() && global_max.is_empty() {
            continue;
        }
        for q in [&mut rec.target, &mut rec.lower_bound, &mut rec.upper_bound] {
            let before = q.amounts();
            let after = cap_resources(before, container_policy, global_max);
            replace_if_changed(&mut q.cpu, before.cpu, after.cpu, Quantity::from_millis);
            replace_if_changed(
                &mut q.memory,
                before.memory,
                after.memory,
                Quantity::from_bytes,
            );
        }
    }
}

fn replace_if_changed(
    q: &mut Option<Quantity>,
    before: Option<ResourceAmount>,
    after: Option<ResourceAmount>,
    make: fn(i64) -> Quantity,
) {
    if before != after {
        *q = after.map(make);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::policy::ContainerResourcePolicy;

    fn s(q: &Option<Quantity>) -> String {
        q.as_ref().map(|q| q.to_string()).unwrap_or_default()
    }

    #[test]
    fn row_033_plain_conversion() {
        let q = to_quantities(&Resources::new(1000, 1024), &OutputFormat::default());
        assert_eq!(s(&q.cpu), "1");
        assert_eq!(q.cpu.as_ref().unwrap().milli_value(), 1000);
        assert_eq!(s(&q.memory), "1Ki");
        assert_eq!(q.memory.as_ref().unwrap().value(), 1024);
    }

    #[test]
    fn row_034_to_038_rounding_and_humanize() {
        let humanize = OutputFormat {
            humanize_memory: true,
            ..Default::default()
        };
        let q = to_quantities(&Resources::new(0, 262_144_000), &humanize);
        assert_eq!(q.memory, Some(quantity::parse("250.00Mi").unwrap()));
        let q = to_quantities(
            &Resources::new(0, 262_144_000),
            &OutputFormat {
                round_memory_bytes: 268_435_456,
                ..humanize.clone()
            },
        );
        assert_eq!(q.memory, Some(quantity::parse("256.00Mi").unwrap()));
        let q = to_quantities(
            &Resources::new(1000, 839_500_000),
            &OutputFormat {
                round_cpu_millicores: 3,
                ..humanize.clone()
            },
        );
        assert_eq!(q.cpu.as_ref().unwrap().milli_value(), 1002);
        assert_eq!(q.memory, Some(quantity::parse("800.61Mi").unwrap()));
        let q = to_quantities(
            &Resources::new(0, 0),
            &OutputFormat {
                round_cpu_millicores: 2,
                ..Default::default()
            },
        );
        assert_eq!(q.amounts(), Resources::new(0, 0));
        let q = to_quantities(
            &Resources::new(1_231_241, 839_500_000),
            &OutputFormat {
                round_cpu_millicores: 13,
                round_memory_bytes: 134_217_728,
                humanize_memory: false,
            },
        );
        assert_eq!(q.cpu.as_ref().unwrap().milli_value(), 1_231_243);
        assert_eq!(s(&q.memory), "896Mi");
    }

    #[test]
    fn row_070_sorted_by_container_name() {
        let mut m = BTreeMap::new();
        for n in ["b", "a", "d", "c"] {
            m.insert(n.to_string(), RecommendedContainerResources::default());
        }
        let out = to_container_recommendations(&m, &OutputFormat::default());
        let names: Vec<_> = out.iter().map(|r| r.container_name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d"]);
    }

    #[test]
    fn row_076_integer_cpu_post_processor() {
        for (milli, want) in [(8000, "8"), (8100, "9"), (8900, "9")] {
            let r = Resources::new(milli, 6 << 30);
            let q = to_quantities(&r, &OutputFormat::default());
            let mut recs = vec![ContainerRecommendation {
                container_name: "c1".into(),
                target: q.clone(),
                lower_bound: q.clone(),
                upper_bound: q.clone(),
                uncapped_target: q,
            }];
            let ann = BTreeMap::from([(
                "vpa-post-processor.kubernetes.io/c1_integerCPU".to_string(),
                "true".to_string(),
            )]);
            apply_integer_cpu(&mut recs, &ann);
            for q in [
                &recs[0].target,
                &recs[0].lower_bound,
                &recs[0].upper_bound,
                &recs[0].uncapped_target,
            ] {
                assert_eq!(s(&q.cpu), want);
                assert_eq!(s(&q.memory), "6Gi");
            }
        }
    }

    fn rec(t: (i64, i64), l: (i64, i64), u: (i64, i64)) -> Vec<ContainerRecommendation> {
        let f = OutputFormat::default();
        let target = to_quantities(&Resources::new(t.0, t.1), &f);
        vec![ContainerRecommendation {
            container_name: "container".into(),
            uncapped_target: target.clone(),
            target,
            lower_bound: to_quantities(&Resources::new(l.0, l.1), &f),
            upper_bound: to_quantities(&Resources::new(u.0, u.1), &f),
        }]
    }

    const MI: i64 = 1 << 20;

    fn policy(min: Resources, max: Resources) -> PodResourcePolicy {
        PodResourcePolicy {
            container_policies: vec![ContainerResourcePolicy {
                container_name: "container".into(),
                min_allowed: min,
                max_allowed: max,
                ..Default::default()
            }],
        }
    }

    fn amounts(r: &[ContainerRecommendation]) -> [Resources; 4] {
        [
            r[0].target.amounts(),
            r[0].lower_bound.amounts(),
            r[0].upper_bound.amounts(),
            r[0].uncapped_target.amounts(),
        ]
    }

    #[test]
    fn row_077_to_082_apply_vpa_policy() {
        let none = Resources::default();
        let cpu = |v| Resources {
            cpu: Some(v),
            memory: None,
        };
        let mem = |v| Resources {
            cpu: None,
            memory: Some(v),
        };
        let both = |c, m| Resources::new(c, m * MI);
        // (row, policy (min, max) if any, global max, expected target, lower, upper)
        let cases = [
            (
                77,
                Some((both(50, 50), none)),
                none,
                [both(50, 50), both(50, 50), both(53, 53)],
            ),
            (
                78,
                Some((none, both(40, 40))),
                none,
                [both(40, 40), both(31, 31), both(40, 40)],
            ),
            (
                79,
                None,
                both(40, 40),
                [both(40, 40), both(31, 31), both(40, 40)],
            ),
            (
                80,
                Some((both(35, 35), none)),
                both(50, 50),
                [both(42, 42), both(35, 35), both(50, 50)],
            ),
            (
                81,
                Some((none, cpu(40))),
                mem(40 * MI),
                [both(40, 40), both(31, 31), both(40, 40)],
            ),
            // The VPA's own maxAllowed wins over the global one for cpu.
            (
                82,
                Some((none, cpu(40))),
                both(30, 30),
                [both(40, 30), both(31, 30), both(40, 30)],
            ),
        ];
        for (row, pol, global, want) in cases {
            let mut r = rec((42, 42 * MI), (31, 31 * MI), (53, 53 * MI));
            let pol = pol.map(|(min, max)| policy(min, max));
            apply_vpa_policy(&mut r, pol.as_ref(), &global);
            let got = amounts(&r);
            assert_eq!(got[..3], want, "row {row}");
            assert_eq!(
                got[3],
                both(42, 42),
                "row {row}: uncapped target is never capped"
            );
        }
    }
}
