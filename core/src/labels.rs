//! Label sets and label selectors (Kubernetes `labels.Set` and `LabelSelector` semantics), as
//! plain values: the aggregation key of a pod's containers uses the canonical label string,
//! and VPAs select pods with selectors.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use thiserror::Error;

/// A pod's labels.
pub type LabelSet = BTreeMap<String, String>;

/// `labels.Set.String()`: `k1=v1,k2=v2`, keys sorted.
pub fn canonical_string(labels: &LabelSet) -> String {
    let mut s = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}={v}");
    }
    s
}

/// One `matchExpressions` operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// The label's value is one of the values.
    In,
    /// The label is absent, or its value is none of the values.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One requirement of a selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Label key.
    pub key: String,
    /// Operator.
    pub operator: Operator,
    /// Values (In, NotIn).
    pub values: Vec<String>,
}

/// A selector that cannot be built.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SelectorError {
    /// An operator other than In, NotIn, Exists, DoesNotExist.
    #[error("{operator:?} is not a valid label selector operator")]
    UnknownOperator {
        /// The operator as written.
        operator: String,
    },
    /// In or NotIn without values.
    #[error("for 'in', 'notin' operators, values set can't be empty (key {key:?})")]
    MissingValues {
        /// The key.
        key: String,
    },
    /// Exists or DoesNotExist with values.
    #[error("values set must be empty for exists and does not exist (key {key:?})")]
    UnexpectedValues {
        /// The key.
        key: String,
    },
}

/// A label selector: every requirement must hold. An empty selector matches everything
/// (`metav1.LabelSelectorAsSelector` of `{}`); "no selector" is represented by `Option::None`
/// at the caller and matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

impl Selector {
    /// From `matchLabels` and `matchExpressions` (operator spelled as in the API).
    pub fn new<'a>(
        match_labels: impl IntoIterator<Item = (&'a str, &'a str)>,
        match_expressions: impl IntoIterator<Item = (&'a str, &'a str, Vec<String>)>,
    ) -> Result<Self, SelectorError> {
        let mut requirements: Vec<Requirement> = match_labels
            .into_iter()
            .map(|(k, v)| Requirement {
                key: k.to_string(),
                operator: Operator::In,
                values: vec![v.to_string()],
            })
            .collect();
        for (key, op, values) in match_expressions {
            let operator = match op {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::UnknownOperator {
                        operator: other.to_string(),
                    });
                }
            };
            match operator {
                Operator::In | Operator::NotIn if values.is_empty() => {
                    return Err(SelectorError::MissingValues {
                        key: key.to_string(),
                    });
                }
                Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                    return Err(SelectorError::UnexpectedValues {
                        key: key.to_string(),
                    });
                }
                _ => {}
            }
            requirements.push(Requirement {
                key: key.to_string(),
                operator,
                values,
            });
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.requirements.iter().all(|r| {
            let value = labels.get(&r.key);
            match r.operator {
                Operator::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Operator::NotIn => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                Operator::Exists => value.is_some(),
                Operator::DoesNotExist => value.is_none(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> LabelSet {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn canonical_string_sorts_keys() {
        assert_eq!(canonical_string(&set(&[("b", "2"), ("a", "1")])), "a=1,b=2");
        assert_eq!(canonical_string(&LabelSet::new()), "");
    }

    #[test]
    fn selectors_match_like_kubernetes() {
        let s = Selector::new(
            [("app", "web")],
            [
                ("tier", "In", vec!["front".into(), "edge".into()]),
                ("canary", "DoesNotExist", vec![]),
                ("env", "NotIn", vec!["dev".into()]),
                ("team", "Exists", vec![]),
            ],
        )
        .unwrap();
        assert!(s.matches(&set(&[("app", "web"), ("tier", "edge"), ("team", "x")])));
        assert!(s.matches(&set(&[
            ("app", "web"),
            ("tier", "front"),
            ("team", "x"),
            ("env", "prod")
        ])));
        assert!(!s.matches(&set(&[("app", "web"), ("tier", "back"), ("team", "x")])));
        assert!(!s.matches(&set(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "x"),
            ("canary", "1")
        ])));
        assert!(!s.matches(&set(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "x"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&set(&[("app", "web"), ("tier", "edge")])));
        assert!(
            Selector::default().matches(&LabelSet::new()),
            "empty selector matches all"
        );
    }

    #[test]
    fn invalid_selectors_are_errors() {
        assert!(matches!(
            Selector::new([], [("a", "Near", vec![])]),
            Err(SelectorError::UnknownOperator { .. })
        ));
        assert!(matches!(
            Selector::new([], [("a", "In", vec![])]),
            Err(SelectorError::MissingValues { .. })
        ));
        assert!(matches!(
            Selector::new([], [("a", "Exists", vec!["x".into()])]),
            Err(SelectorError::UnexpectedValues { .. })
        ));
    }
}
