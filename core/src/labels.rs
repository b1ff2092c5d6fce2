//! Label sets and label selectors (Kubernetes `labels.Set` and `LabelSelector` semantics), as
//! plain values: the aggregation key of a pod's containers uses the canonical label string,
//! and VPAs select pods with selectors, built from `matchLabels`/`matchExpressions` or parsed
//! from the selector string syntax (`a=b,c in (x,y),!d`) of a `/scale` subresource.

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
    /// The label's value, as an integer, is greater than the single value (string selectors
    /// only: `a>5`).
    Gt,
    /// The label's value, as an integer, is less than the single value (string selectors
    /// only: `a<5`).
    Lt,
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
    /// A label selector string (`a=b,c in (x,y),!d`) that does not parse; the message follows
    /// apimachinery's `labels.Parse` wording.
    #[error("{message}")]
    Parse {
        /// What is wrong, e.g. `found ',', expected: identifier after ','`.
        message: String,
    },
}

/// A label selector: every requirement must hold. An empty selector matches everything
/// (`metav1.LabelSelectorAsSelector` of `{}`); "no selector" is represented by `Option::None`
/// at the caller, or by [`Selector::nothing`] (`labels.Nothing()`), and matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl Selector {
    /// `labels.Nothing()`: matches no label set (a well-known controller without a selector,
    /// a CronJob whose job template has no labels). It has no requirements.
    pub fn nothing() -> Self {
        Self {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// True for [`Selector::nothing`].
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

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
        Ok(Self {
            requirements,
            nothing: false,
        })
    }

    /// The requirements, sorted by key (none for [`Selector::nothing`]: check
    /// [`Selector::is_nothing`] before turning them into a query).
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when every requirement holds for `labels`.
    pub fn matches(&self, labels: &LabelSet) -> bool {
        !self.nothing
            && self.requirements.iter().all(|r| {
                let value = labels.get(&r.key);
                match r.operator {
                    Operator::In => value.is_some_and(|v| r.values.iter().any(|x| x == v)),
                    Operator::NotIn => value.is_none_or(|v| r.values.iter().all(|x| x != v)),
                    Operator::Exists => value.is_some(),
                    Operator::DoesNotExist => value.is_none(),
                    Operator::Gt | Operator::Lt => {
                        let (Some(v), [bound]) = (value, r.values.as_slice()) else {
                            return false;
                        };
                        match (v.parse::<i64>(), bound.parse::<i64>()) {
                            (Ok(v), Ok(b)) => {
                                if r.operator == Operator::Gt {
                                    v > b
                                } else {
                                    v < b
                                }
                            }
                            _ => false,
                        }
                    }
                }
            })
    }

    /// Parses a label selector string as `labels.Parse` does (the `/scale` subresource's
    /// `status.selector`): comma-separated requirements `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
    /// `k notin (a,b)`, `k`, `!k`, `k>5`, `k<5`; whitespace between tokens is ignored; the
    /// empty string selects everything. Keys must be qualified names and values valid label
    /// values. Values of a set are de-duplicated and sorted; requirements are sorted by key.
    pub fn parse(selector: &str) -> Result<Self, SelectorError> {
        let tokens = lex(selector);
        let mut p = Parser { tokens, pos: 0 };
        let mut requirements = p
            .parse()
            .map_err(|message| SelectorError::Parse { message })?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self {
            requirements,
            nothing: false,
        })
    }
}

/// Checks a label key (`IsQualifiedName`): an optional DNS-1123 subdomain prefix and `/`,
/// then a name of at most 63 characters, alphanumeric at both ends, `-`, `_`, `.` inside.
pub fn validate_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        None => (None, key),
        Some((p, n)) if !n.contains('/') => (Some(p), n),
        Some(_) => {
            return Err(format!(
                "invalid label key {key:?}: a qualified name must consist of alphanumeric \
                 characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/'"
            ));
        }
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be non-empty"
            ));
        }
        if prefix.len() > 253 || !is_dns1123_subdomain(prefix) {
            return Err(format!(
                "invalid label key {key:?}: prefix part must be a lowercase RFC 1123 subdomain \
                 of at most 253 characters"
            ));
        }
    }
    if name.is_empty() {
        return Err(format!(
            "invalid label key {key:?}: name part must be non-empty"
        ));
    }
    if name.len() > 63 {
        return Err(format!(
            "invalid label key {key:?}: name part must be no more than 63 characters"
        ));
    }
    if !is_label_name(name) {
        return Err(format!(
            "invalid label key {key:?}: name part must consist of alphanumeric characters, \
             '-', '_' or '.', and must start and end with an alphanumeric character"
        ));
    }
    Ok(())
}

/// Checks a label value: empty, or at most 63 characters, alphanumeric at both ends, `-`,
/// `_`, `.` inside.
pub fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!(
            "invalid label value {value:?}: must be no more than 63 characters"
        ));
    }
    if !value.is_empty() && !is_label_name(value) {
        return Err(format!(
            "invalid label value {value:?}: a valid label must be an empty string or consist \
             of alphanumeric characters, '-', '_' or '.', and must start and end with an \
             alphanumeric character"
        ));
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*`
fn is_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(|label| {
        let b = label.as_bytes();
        let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        match (b.first(), b.last()) {
            (Some(f), Some(l)) => alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-'),
            _ => false,
        }
    })
}

/// A token of the selector string syntax, with its literal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Ident,
    In,
    NotIn,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

fn is_special(c: u8) -> bool {
    matches!(c, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n')
}

/// Splits the string into tokens: runs of non-special, non-space characters are identifiers
/// (`in`/`notin` are keywords), `!=` and `==` are single tokens.
fn lex(input: &str) -> Vec<(Tok, &str)> {
    let b = input.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        if is_special(c) {
            let two = b.get(i + 1).copied();
            let (tok, len) = match (c, two) {
                (b'!', Some(b'=')) => (Tok::NotEq, 2),
                (b'=', Some(b'=')) => (Tok::DoubleEq, 2),
                (b'!', _) => (Tok::Bang, 1),
                (b'=', _) => (Tok::Eq, 1),
                (b'(', _) => (Tok::Open, 1),
                (b')', _) => (Tok::Close, 1),
                (b',', _) => (Tok::Comma, 1),
                (b'>', _) => (Tok::Gt, 1),
                _ => (Tok::Lt, 1),
            };
            out.push((tok, &input[i..i + len]));
            i += len;
            continue;
        }
        let start = i;
        while i < b.len() && !is_space(b[i]) && !is_special(b[i]) {
            i += 1;
        }
        let lit = &input[start..i];
        let tok = match lit {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Ident,
        };
        out.push((tok, lit));
    }
    out.push((Tok::End, ""));
    out
}

struct Parser<'a> {
    tokens: Vec<(Tok, &'a str)>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl<'a> Parser<'a> {
    /// The next token; in a value context the keywords `in`/`notin` are identifiers.
    fn peek(&self, values: bool) -> (Tok, &'a str) {
        let (tok, lit) = self.tokens.get(self.pos).copied().unwrap_or((Tok::End, ""));
        match tok {
            Tok::In | Tok::NotIn if values => (Tok::Ident, lit),
            _ => (tok, lit),
        }
    }

    fn next(&mut self, values: bool) -> (Tok, &'a str) {
        let t = self.peek(values);
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut out = Vec::new();
        loop {
            let (tok, lit) = self.peek(true);
            match tok {
                Tok::Ident | Tok::Bang => {
                    let r = self
                        .requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    out.push(r);
                    let (t, l) = self.next(true);
                    match t {
                        Tok::End => return Ok(out),
                        Tok::Comma => {
                            let (t2, l2) = self.peek(true);
                            if t2 != Tok::Ident && t2 != Tok::Bang {
                                return Err(format!(
                                    "found '{l2}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => return Err(format!("found '{l}', expected: ',' or 'end of string'")),
                    }
                }
                Tok::End => return Ok(out),
                _ => {
                    return Err(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, String> {
        let (mut tok, mut lit) = self.next(true);
        let negated = tok == Tok::Bang;
        if negated {
            (tok, lit) = self.next(true);
        }
        if tok != Tok::Ident {
            return Err(format!("found '{lit}', expected: identifier"));
        }
        let key = lit.to_string();
        validate_label_key(&key)?;
        let (after, _) = self.peek(true);
        if negated || matches!(after, Tok::End | Tok::Comma) {
            let operator = if negated {
                Operator::DoesNotExist
            } else {
                Operator::Exists
            };
            return Ok(Requirement {
                key,
                operator,
                values: Vec::new(),
            });
        }
        let (op_tok, op_lit) = self.next(false);
        let (operator, values) = match op_tok {
            Tok::In => (Operator::In, self.value_set()?),
            Tok::NotIn => (Operator::NotIn, self.value_set()?),
            Tok::Eq | Tok::DoubleEq => (Operator::In, vec![self.exact_value()?]),
            Tok::NotEq => (Operator::NotIn, vec![self.exact_value()?]),
            Tok::Gt => (Operator::Gt, vec![self.exact_value()?]),
            Tok::Lt => (Operator::Lt, vec![self.exact_value()?]),
            _ => return Err(format!("found '{op_lit}', expected: {BINARY_OPERATORS}")),
        };
        for v in &values {
            validate_label_value(v)?;
        }
        if matches!(operator, Operator::Gt | Operator::Lt)
            && values.iter().any(|v| v.parse::<i64>().is_err())
        {
            return Err("for 'Gt', 'Lt' operators, the value must be an integer".to_string());
        }
        Ok(Requirement {
            key,
            operator,
            values,
        })
    }

    /// `k=`, `k=v`: an empty value at the end of a requirement.
    fn exact_value(&mut self) -> Result<String, String> {
        let (tok, _) = self.peek(true);
        if matches!(tok, Tok::End | Tok::Comma) {
            return Ok(String::new());
        }
        let (tok, lit) = self.next(true);
        if tok == Tok::Ident {
            Ok(lit.to_string())
        } else {
            Err(format!("found '{lit}', expected: identifier"))
        }
    }

    /// `(a,b)`; `()` is the set of the empty value, and empty slots (`(a,)`, `(,a)`) add it.
    fn value_set(&mut self) -> Result<Vec<String>, String> {
        let (tok, lit) = self.next(true);
        if tok != Tok::Open {
            return Err(format!("found '{lit}' expected: '('"));
        }
        let mut set = std::collections::BTreeSet::new();
        let (tok, lit) = self.peek(true);
        match tok {
            Tok::Close => {
                self.next(true);
                set.insert(String::new());
                return Ok(set.into_iter().collect());
            }
            Tok::Ident | Tok::Comma => {}
            _ => return Err(format!("found '{lit}', expected: ',', ')' or identifier")),
        }
        loop {
            let (tok, lit) = self.next(true);
            match tok {
                Tok::Ident => {
                    set.insert(lit.to_string());
                    let (t2, l2) = self.peek(true);
                    match t2 {
                        Tok::Comma => {}
                        Tok::Close => break,
                        _ => return Err(format!("found '{l2}', expected: ',' or ')'")),
                    }
                }
                Tok::Comma => {
                    if set.is_empty() {
                        set.insert(String::new());
                    }
                    let (t2, _) = self.peek(true);
                    if t2 == Tok::Close {
                        set.insert(String::new());
                        break;
                    }
                    if t2 == Tok::Comma {
                        self.next(true);
                        set.insert(String::new());
                    }
                }
                _ => return Err(format!("found '{lit}', expected: ',', or identifier")),
            }
        }
        let (tok, lit) = self.next(true);
        if tok != Tok::Close {
            return Err(format!("found '{lit}', expected: ')'"));
        }
        Ok(set.into_iter().collect())
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

    fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
        Requirement {
            key: key.to_string(),
            operator,
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn parse_accepts_the_selector_string_syntax() {
        use Operator::*;
        let cases: &[(&str, Vec<Requirement>)] = &[
            ("", vec![]),
            ("   ", vec![]),
            ("a=b", vec![req("a", In, &["b"])]),
            ("a==b", vec![req("a", In, &["b"])]),
            ("a!=b", vec![req("a", NotIn, &["b"])]),
            ("a=", vec![req("a", In, &[""])]),
            ("a=,b=c", vec![req("a", In, &[""]), req("b", In, &["c"])]),
            ("a", vec![req("a", Exists, &[])]),
            ("!a", vec![req("a", DoesNotExist, &[])]),
            ("! a", vec![req("a", DoesNotExist, &[])]),
            (" a = b ", vec![req("a", In, &["b"])]),
            ("a in (y,x,y)", vec![req("a", In, &["x", "y"])]),
            ("a notin (x)", vec![req("a", NotIn, &["x"])]),
            ("a in(x , y)", vec![req("a", In, &["x", "y"])]),
            ("a in ()", vec![req("a", In, &[""])]),
            ("a in (x,)", vec![req("a", In, &["", "x"])]),
            ("a in (,x)", vec![req("a", In, &["", "x"])]),
            ("a in (x,,y)", vec![req("a", In, &["", "x", "y"])]),
            ("in in (in,notin)", vec![req("in", In, &["in", "notin"])]),
            ("a>5", vec![req("a", Gt, &["5"])]),
            ("a<10", vec![req("a", Lt, &["10"])]),
            (
                "z=1,a=b,c!=d,e in (x,y),!f,g",
                vec![
                    req("a", In, &["b"]),
                    req("c", NotIn, &["d"]),
                    req("e", In, &["x", "y"]),
                    req("f", DoesNotExist, &[]),
                    req("g", Exists, &[]),
                    req("z", In, &["1"]),
                ],
            ),
            (
                "app.kubernetes.io/name=web,example.com/tier-1=A_b.c",
                vec![
                    req("app.kubernetes.io/name", In, &["web"]),
                    req("example.com/tier-1", In, &["A_b.c"]),
                ],
            ),
        ];
        for (input, want) in cases {
            let got = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(got.requirements(), want.as_slice(), "{input:?}");
        }
    }

    #[test]
    fn parse_rejects_malformed_selectors_with_apimachinery_wording() {
        let cases: &[(&str, &str)] = &[
            ("a,", "found '', expected: identifier after ','"),
            (
                ",a",
                "found ',', expected: !, identifier, or 'end of string'",
            ),
            ("a,,b", "found ',', expected: identifier after ','"),
            ("!a=b", "found '=', expected: ',' or 'end of string'"),
            (
                "a b",
                "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a!b",
                "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
            ),
            (
                "a in x",
                "unable to parse requirement: found 'x' expected: '('",
            ),
            (
                "a in (x",
                "unable to parse requirement: found '', expected: ',' or ')'",
            ),
            (
                "a in (x y)",
                "unable to parse requirement: found 'y', expected: ',' or ')'",
            ),
            (
                "a in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            (
                "a in (x,",
                "unable to parse requirement: found '', expected: ',', or identifier",
            ),
            (
                "a==(",
                "unable to parse requirement: found '(', expected: identifier",
            ),
            (
                "=b",
                "found '=', expected: !, identifier, or 'end of string'",
            ),
            (
                "!",
                "unable to parse requirement: found '', expected: identifier",
            ),
            (
                "a>x",
                "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer",
            ),
            ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ];
        for (input, want) in cases {
            match Selector::parse(input) {
                Err(SelectorError::Parse { message }) => assert_eq!(&message, want, "{input:?}"),
                other => panic!("{input:?}: expected a parse error, got {other:?}"),
            }
        }
        for bad in [
            "-a=b",
            "a/b/c=d",
            "/a=b",
            "Example.com/a=b",
            "a=-b",
            "a=b_",
            "a=Ünïcode",
        ] {
            assert!(
                matches!(Selector::parse(bad), Err(SelectorError::Parse { .. })),
                "{bad:?} must be rejected"
            );
        }
        let long = "k".repeat(64);
        assert!(Selector::parse(&long).is_err(), "64-character key");
        assert!(
            Selector::parse(&format!("a={long}")).is_err(),
            "64-character value"
        );
        assert!(Selector::parse(&"k".repeat(63)).is_ok());
    }

    #[test]
    fn parsed_selectors_match_like_kubernetes() {
        let s = Selector::parse("app=web,tier in (front,edge),!canary,env!=dev,team").unwrap();
        assert!(s.matches(&set(&[("app", "web"), ("tier", "edge"), ("team", "x")])));
        assert!(!s.matches(&set(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "x"),
            ("env", "dev")
        ])));
        assert!(!s.matches(&set(&[
            ("app", "web"),
            ("tier", "edge"),
            ("team", "x"),
            ("canary", "")
        ])));
        let gt = Selector::parse("n>5,m<3").unwrap();
        assert!(gt.matches(&set(&[("n", "6"), ("m", "2")])));
        assert!(!gt.matches(&set(&[("n", "5"), ("m", "2")])));
        assert!(
            !gt.matches(&set(&[("n", "x"), ("m", "2")])),
            "non-integer label"
        );
        assert!(!gt.matches(&set(&[("m", "2")])), "missing label");
        assert!(
            Selector::parse("")
                .unwrap()
                .matches(&set(&[("any", "thing")]))
        );
        assert!(!Selector::nothing().matches(&set(&[("any", "thing")])));
        assert!(!Selector::nothing().matches(&LabelSet::new()));
        assert!(Selector::nothing().is_nothing() && !Selector::default().is_nothing());
        assert_ne!(Selector::nothing(), Selector::default());
        assert_eq!(
            Selector::parse("app=web").unwrap(),
            Selector::new([("app", "web")], []).unwrap(),
            "a=b equals matchLabels"
        );
    }
}
