//! A small YAML writer for the generated CRD files.
//!
//! serde_yaml writes YAML 1.2, where `Off` is a plain string. The CRD files are read by Helm and
//! kubectl through sigs.k8s.io/yaml, which follows YAML 1.1, where an unquoted `Off` is the
//! boolean `false`: the `updateMode` enum would become `[false, Initial, …]`. This writer
//! therefore leaves a string unquoted only when it is a plain word that no YAML version reads as
//! anything but a string, and double-quotes everything else (JSON string syntax, which is valid
//! YAML). Multi-line strings become literal blocks (`|-`) when that is exact.
//!
//! The layout follows controller-gen's: two-space indentation, sequences at the indentation of
//! their key, keys in the order of the JSON object (sorted).

use serde_json::{Map, Value};

/// Words that some YAML version reads as a boolean or null when unquoted.
const RESERVED_WORDS: &[&str] = &[
    "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
    "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL",
];

/// Characters that YAML 1.1 reads as line breaks or skips, besides the ASCII controls.
const SPECIAL_CHARS: [char; 3] = ['\u{2028}', '\u{2029}', '\u{feff}'];

/// Renders a JSON value (an object, for a CRD) as a YAML document.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => write_seq(&mut out, items, 0),
        scalar => {
            write_inline(&mut out, scalar, 0);
            out.push('\n');
        }
    }
    out
}

/// Writes the entries of `map` at `indent`. With `inline_first`, the first key follows text
/// already written on the current line (a sequence dash).
fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            push_indent(out, indent);
        }
        write_key(out, key);
        out.push(':');
        match value {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                write_map(out, child, indent + 2, false);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(out, items, indent);
            }
            scalar => {
                out.push(' ');
                write_inline(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes the items of a sequence, each starting with `- ` at `indent`.
fn write_seq(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        push_indent(out, indent);
        out.push('-');
        match item {
            Value::Object(map) if !map.is_empty() => {
                out.push(' ');
                write_map(out, map, indent + 2, true);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            scalar => {
                out.push(' ');
                write_inline(out, scalar, indent + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes a value that fits after `key: ` or `- `: a scalar, `{}`, `[]`, or the header of a
/// literal block whose lines are indented by `block_indent`.
fn write_inline(out: &mut String, value: &Value, block_indent: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s, block_indent),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn write_key(out: &mut String, key: &str) {
    if is_plain_word(key) {
        out.push_str(key);
    } else {
        write_quoted(out, key);
    }
}

fn write_string(out: &mut String, s: &str, block_indent: usize) {
    if is_plain_word(s) {
        out.push_str(s);
    } else if fits_literal_block(s) {
        out.push_str("|-");
        for line in s.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                push_indent(out, block_indent);
                out.push_str(line);
            }
        }
    } else {
        write_quoted(out, s);
    }
}

/// Writes `s` double-quoted. A JSON string is a valid YAML double-quoted scalar once the
/// characters YAML 1.1 treats as line breaks are escaped too.
fn write_quoted(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || SPECIAL_CHARS.contains(&c) => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A word that every YAML version reads as this exact string: it starts with a letter, holds
/// only letters, digits and `.`, `_`, `/`, `-`, and is not a reserved word.
fn is_plain_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'))
        && !RESERVED_WORDS.contains(&s)
}

/// Whether `s` reads back exactly from a `|-` block: several lines, printable text without
/// tabs, no trailing blanks, the first line not indented and no trailing newline.
fn fits_literal_block(s: &str) -> bool {
    s.contains('\n')
        && !s.ends_with('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars()
            .all(|c| c == '\n' || !(c.is_control() || SPECIAL_CHARS.contains(&c)))
        && s.split('\n').all(|line| !line.ends_with(' '))
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use serde_json::json;

    fn reads_back(value: &Value) {
        let text = to_yaml(value);
        let parsed: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(&parsed, value, "{text}");
    }

    #[test]
    fn yaml_1_1_booleans_are_quoted() {
        let value = json!({"enum": ["Off", "Initial", "on", "yes", "n", "null", "~", ""]});
        let text = to_yaml(&value);
        assert!(text.contains("- \"Off\"\n"), "{text}");
        assert!(text.contains("- Initial\n"), "{text}");
        assert!(text.contains("- \"yes\"\n"), "{text}");
        reads_back(&value);
    }

    #[test]
    fn layout_and_scalars_read_back() {
        reads_back(&json!({
            "a": {"b": [1, 2.5, true, null, {"c": "d", "e": []}, [], {}, [["x"]]]},
            "empty": {},
            "multi": "first line\nsecond: line\n\n  indented # not a comment",
            "trailing": "ends with newline\n",
            "lead": " leading space\nx",
            "quotes": "it's \"quoted\"",
            "regex": r"^(\+|-)?[0-9]+$",
            "number-like": "1.5",
            "path": ".spec.updatePolicy.updateMode",
            "url": "https://example.invalid/a#b",
            "tab": "a\tb\nc",
            "control": "bell\u{7}, line separator\u{2028}, nel\u{85}",
            "key with space": "v",
        }));
        assert_eq!(
            to_yaml(&json!({"a": ["x", {"b": 1, "c": 2}]})),
            "a:\n- x\n- b: 1\n  c: 2\n"
        );
    }
}
