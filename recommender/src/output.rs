//! Rendering replay results: a table per workload and container, or JSON.

use crate::replay::{Emitted, ReplayOutput};
use serde_json::{Map, Value, json};
use std::fmt::Write as _;
use vpa_core::recommendation::Quantities;

fn quantities_json(q: &Quantities) -> Value {
    let mut m = Map::new();
    if let Some(c) = &q.cpu {
        m.insert("cpu".into(), Value::String(c.to_string()));
    }
    if let Some(mem) = &q.memory {
        m.insert("memory".into(), Value::String(mem.to_string()));
    }
    Value::Object(m)
}

fn emitted_json(e: &Emitted) -> Value {
    let r = &e.recommendation;
    json!({
        "time": e.time.to_rfc3339(),
        "namespace": &*e.namespace,
        "workload": &*e.workload,
        "container": r.container_name,
        "target": quantities_json(&r.target),
        "lowerBound": quantities_json(&r.lower_bound),
        "upperBound": quantities_json(&r.upper_bound),
        "uncappedTarget": quantities_json(&r.uncapped_target),
    })
}

/// `{"recommendations": [...], "stats": {...}}`, the format the upstream oracle prints too.
pub fn to_json(out: &ReplayOutput) -> Value {
    json!({
        "recommendations": out.recommendations.iter().map(emitted_json).collect::<Vec<_>>(),
        "stats": out.stats,
    })
}

fn cell(q: &Quantities, cpu: bool) -> String {
    let v = if cpu { &q.cpu } else { &q.memory };
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// The recommendations as of the end of the trace, one block per workload.
pub fn to_table(out: &ReplayOutput) -> String {
    let mut s = String::new();
    let Some(end) = out.recommendations.iter().map(|e| e.time).max() else {
        s.push_str("no samples in the trace\n");
        return s;
    };
    let last: Vec<&Emitted> = out
        .recommendations
        .iter()
        .filter(|e| e.time == end)
        .collect();
    let _ = writeln!(
        s,
        "Recommendations as of {} ({} rows, {} CPU and {} memory samples, {} OOM kills)",
        end, out.stats.rows, out.stats.cpu_samples, out.stats.memory_samples, out.stats.ooms
    );
    let header = [
        "CONTAINER",
        "RESOURCE",
        "TARGET",
        "LOWER",
        "UPPER",
        "UNCAPPED",
    ];
    let mut current: Option<(&str, &str)> = None;
    let mut rows: Vec<[String; 6]> = Vec::new();
    let flush = |s: &mut String, rows: &mut Vec<[String; 6]>| {
        if rows.is_empty() {
            return;
        }
        let mut widths = header.map(str::len);
        for r in rows.iter() {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.len());
            }
        }
        let line = |s: &mut String, cells: &[&str]| {
            let mut l = String::from("  ");
            for (i, c) in cells.iter().enumerate() {
                let _ = write!(l, "{:<w$}  ", c, w = widths[i]);
            }
            let _ = writeln!(s, "{}", l.trim_end());
        };
        line(s, &header);
        for r in rows.iter() {
            line(s, &r.iter().map(String::as_str).collect::<Vec<_>>());
        }
        rows.clear();
    };
    for e in last {
        let key = (&*e.namespace, &*e.workload);
        if current != Some(key) {
            flush(&mut s, &mut rows);
            let pods = out
                .pods
                .get(&(e.namespace.clone(), e.workload.clone()))
                .copied()
                .unwrap_or(0);
            let _ = writeln!(
                s,
                "\n{}/{} ({} pod{})",
                key.0,
                key.1,
                pods,
                if pods == 1 { "" } else { "s" }
            );
            current = Some(key);
        }
        let r = &e.recommendation;
        for (cpu, name) in [(true, "cpu"), (false, "memory")] {
            rows.push([
                if cpu {
                    r.container_name.clone()
                } else {
                    String::new()
                },
                name.to_string(),
                cell(&r.target, cpu),
                cell(&r.lower_bound, cpu),
                cell(&r.upper_bound, cpu),
                cell(&r.uncapped_target, cpu),
            ]);
        }
    }
    flush(&mut s, &mut rows);
    s
}
