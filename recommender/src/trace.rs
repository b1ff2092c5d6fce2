//! The CSV usage-trace format read by `vpa-recommender replay`.
//!
//! Header: `timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event`.
//! `timestamp` is RFC 3339 or Unix seconds (optionally with a fraction). An empty `event` is a
//! usage sample (`cpu_cores` and `memory_bytes` each optional, at least one present, both
//! Kubernetes quantities); `event = oom` is an OOM kill whose `memory_bytes` is the container's
//! memory request at the kill. The reader streams: it holds one line at a time, and interns
//! each container's identity (namespace, workload, pod, container) the first time it appears.

use rustc_hash::FxHashMap;
use std::io::BufRead;
use std::sync::Arc;
use thiserror::Error;
use vpa_core::quantity;
use vpa_core::time::Timestamp;

/// The exact header line.
pub const HEADER: &str = "timestamp,namespace,workload,pod,container,cpu_cores,memory_bytes,event";

/// A line that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TraceError {
    /// A malformed line.
    #[error("line {line}: {reason}")]
    Malformed {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// The underlying reader failed.
    #[error("reading the trace: {0}")]
    Io(String),
}

/// What a row says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A usage sample.
    Usage {
        /// CPU usage in millicores, if given.
        cpu_millis: Option<i64>,
        /// Memory usage in bytes, if given.
        memory_bytes: Option<i64>,
    },
    /// An OOM kill of a container that requested this much memory.
    Oom {
        /// The memory request at the kill, in bytes.
        request_bytes: i64,
    },
}

/// The identity of one container of one pod, validated when first seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerKey {
    /// Namespace.
    pub namespace: Arc<str>,
    /// Workload (the VPA's target).
    pub workload: Arc<str>,
    /// Pod.
    pub pod: Arc<str>,
    /// Container.
    pub container: Arc<str>,
}

/// One parsed row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    /// 1-based line number.
    pub line: usize,
    /// When.
    pub timestamp: Timestamp,
    /// Index of the row's container in [`TraceReader::keys`], in order of first appearance.
    pub key: u32,
    /// True on the first row of this container.
    pub new_key: bool,
    /// What happened.
    pub event: Event,
}

/// Streams rows from a CSV trace.
pub struct TraceReader<R> {
    reader: R,
    buf: Vec<u8>,
    line: usize,
    header_checked: bool,
    index: FxHashMap<Box<[u8]>, u32>,
    keys: Vec<ContainerKey>,
}

impl<R: BufRead> TraceReader<R> {
    /// A reader over `reader`; the header is checked on the first call to `next_row`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::with_capacity(256),
            line: 0,
            header_checked: false,
            index: FxHashMap::default(),
            keys: Vec::new(),
        }
    }

    /// Every container seen so far; a row's `key` indexes this.
    pub fn keys(&self) -> &[ContainerKey] {
        &self.keys
    }

    fn malformed(&self, reason: impl Into<String>) -> TraceError {
        TraceError::Malformed {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn read_line(&mut self) -> Result<bool, TraceError> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| TraceError::Io(e.to_string()))?;
        if n == 0 {
            return Ok(false);
        }
        self.line += 1;
        while matches!(self.buf.last(), Some(b'\n' | b'\r')) {
            self.buf.pop();
        }
        Ok(true)
    }

    /// The next row, `None` at the end.
    pub fn next_row(&mut self) -> Result<Option<Row>, TraceError> {
        if !self.header_checked {
            if !self.read_line()? {
                return Err(TraceError::Malformed {
                    line: 1,
                    reason: format!("empty trace: expected the header {HEADER:?}"),
                });
            }
            let header = self.buf.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&self.buf);
            if header != HEADER.as_bytes() {
                return Err(self.malformed(format!(
                    "expected the header {HEADER:?}, found {:?}",
                    String::from_utf8_lossy(header)
                )));
            }
            self.header_checked = true;
        }
        loop {
            if !self.read_line()? {
                return Ok(None);
            }
            if !self.buf.iter().all(|b| b.is_ascii_whitespace()) {
                break;
            }
        }
        let line = self.line;
        let bad = |reason: String| TraceError::Malformed { line, reason };
        let fields = split_fields(&self.buf).map_err(bad)?;
        let (timestamp, event) = parse_values(&fields).map_err(bad)?;
        // Fields 1..=4 are contiguous in the line: `namespace,workload,pod,container`.
        let key_start = fields[0].len() + 1;
        let key_len = fields[1].len() + fields[2].len() + fields[3].len() + fields[4].len() + 3;
        let key_bytes = &self.buf[key_start..key_start + key_len];
        let (key, new_key) = match self.index.get(key_bytes) {
            Some(&k) => (k, false),
            None => {
                let names = parse_names(&fields).map_err(bad)?;
                let k = u32::try_from(self.keys.len())
                    .map_err(|_| bad("too many distinct containers".to_string()))?;
                self.index.insert(key_bytes.into(), k);
                self.keys.push(names);
                (k, true)
            }
        };
        Ok(Some(Row {
            line,
            timestamp,
            key,
            new_key,
            event,
        }))
    }
}

/// Splits `line` on commas into exactly 8 fields.
fn split_fields(line: &[u8]) -> Result<[&[u8]; 8], String> {
    if memchr::memchr(b'"', line).is_some() {
        return Err("quoted fields are not supported".to_string());
    }
    let mut fields: [&[u8]; 8] = [&[]; 8];
    let mut n = 0;
    let mut start = 0;
    for i in memchr::memchr_iter(b',', line) {
        if n >= 7 {
            return Err("too many fields: expected 8".to_string());
        }
        fields[n] = &line[start..i];
        n += 1;
        start = i + 1;
    }
    if n != 7 {
        return Err(format!(
            "expected 8 comma-separated fields, found {}",
            n + 1
        ));
    }
    fields[7] = &line[start..];
    Ok(fields)
}

fn text<'a>(field: &'a [u8], name: &str) -> Result<&'a str, String> {
    std::str::from_utf8(field).map_err(|_| format!("{name} is not valid UTF-8"))
}

/// Validates the four identity fields (on a container's first row only).
fn parse_names(f: &[&[u8]; 8]) -> Result<ContainerKey, String> {
    let name = |i: usize, field: &str| -> Result<Arc<str>, String> {
        let s = text(f[i], field)?;
        if s.trim() != s {
            return Err(format!("{field} {s:?} has surrounding spaces"));
        }
        Ok(Arc::from(s))
    };
    Ok(ContainerKey {
        namespace: name(1, "namespace")?,
        workload: name(2, "workload")?,
        pod: name(3, "pod")?,
        container: name(4, "container")?,
    })
}

/// The timestamp and event of a row; empty identity fields are rejected here, the rest of
/// their validation happens when a container is first seen.
fn parse_values(f: &[&[u8]; 8]) -> Result<(Timestamp, Event), String> {
    let timestamp = match fast_unix_seconds(f[0]) {
        Some(t) => t,
        None => parse_timestamp(text(f[0], "timestamp")?)?,
    };
    for (i, field) in [
        (1, "namespace"),
        (2, "workload"),
        (3, "pod"),
        (4, "container"),
    ] {
        if f[i].is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    let cpu = text(f[5], "cpu_cores")?;
    let memory = text(f[6], "memory_bytes")?;
    let event = match f[7] {
        b"" => {
            if cpu.is_empty() && memory.is_empty() {
                return Err("a usage row needs cpu_cores or memory_bytes".to_string());
            }
            Event::Usage {
                cpu_millis: optional(cpu, "cpu_cores", parse_cpu_millis)?,
                memory_bytes: optional(memory, "memory_bytes", parse_bytes)?,
            }
        }
        b"oom" => {
            if !cpu.is_empty() {
                return Err("an oom row must leave cpu_cores empty".to_string());
            }
            if memory.is_empty() {
                return Err(
                    "an oom row needs memory_bytes (the memory request at the kill)".to_string(),
                );
            }
            Event::Oom {
                request_bytes: parse_bytes(memory).map_err(|e| format!("memory_bytes: {e}"))?,
            }
        }
        other => {
            return Err(format!(
                "unknown event {:?}: expected empty or \"oom\"",
                String::from_utf8_lossy(other)
            ));
        }
    };
    Ok((timestamp, event))
}

/// Whole Unix seconds (1 to 12 digits), the common case.
#[inline]
fn fast_unix_seconds(b: &[u8]) -> Option<Timestamp> {
    if b.is_empty() || b.len() > 12 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = b
        .iter()
        .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0'));
    Some(Timestamp::from_unix_seconds(secs))
}

fn optional(
    s: &str,
    field: &str,
    parse: fn(&str) -> Result<i64, String>,
) -> Result<Option<i64>, String> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse(s).map(Some).map_err(|e| format!("{field}: {e}"))
    }
}

/// Unix seconds (`1700000000`, `1700000000.25`) or RFC 3339.
pub fn parse_timestamp(s: &str) -> Result<Timestamp, String> {
    let b = s.as_bytes();
    if !b.is_empty() && b[0].is_ascii_digit() && b.iter().all(|c| c.is_ascii_digit() || *c == b'.')
    {
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty()
            || frac.contains('.')
            || frac.len() > 9
            || (s.contains('.') && frac.is_empty())
        {
            return Err(format!("invalid Unix timestamp {s:?}"));
        }
        let secs: i64 = int
            .parse()
            .map_err(|_| format!("Unix timestamp {s:?} is out of range"))?;
        let mut nanos: i64 = 0;
        if !frac.is_empty() {
            nanos = frac
                .parse::<i64>()
                .map_err(|_| format!("invalid Unix timestamp {s:?}"))?
                * 10_i64.pow(9 - frac.len() as u32);
        }
        let total = secs
            .checked_mul(1_000_000_000)
            .and_then(|v| v.checked_add(nanos))
            .ok_or_else(|| format!("Unix timestamp {s:?} is out of range"))?;
        return Ok(Timestamp::from_unix_nanos(total));
    }
    let t = chrono::DateTime::parse_from_rfc3339(s)
        .map_err(|e| format!("invalid timestamp {s:?}: expected RFC 3339 or Unix seconds ({e})"))?;
    t.timestamp_nanos_opt()
        .map(Timestamp::from_unix_nanos)
        .ok_or_else(|| format!("timestamp {s:?} is out of range"))
}

/// CPU cores as a quantity, in millicores rounded up (as `Quantity.MilliValue`).
pub fn parse_cpu_millis(s: &str) -> Result<i64, String> {
    if let Some(v) = fast_decimal_milli(s.as_bytes()) {
        return Ok(v);
    }
    let q = quantity::parse(s).map_err(|e| e.to_string())?;
    if q > quantity::Quantity::new_scaled(9, 12) {
        return Err(format!("value {s:?} is out of range (at most 9T cores)"));
    }
    let m = q.milli_value();
    if m < 0 {
        return Err(format!("negative value {s:?}"));
    }
    Ok(m)
}

/// Bytes as a quantity, rounded up (as `Quantity.Value`).
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 18 && b.iter().all(u8::is_ascii_digit) {
        return Ok(b
            .iter()
            .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0')));
    }
    let q = quantity::parse(s).map_err(|e| e.to_string())?;
    if q > quantity::Quantity::new_scaled(9, 18) {
        return Err(format!("value {s:?} is out of range (at most 9E bytes)"));
    }
    let v = q.value();
    if v < 0 {
        return Err(format!("negative value {s:?}"));
    }
    Ok(v)
}

/// `digits[.digits]` (at most 12 integer digits) to millicores, rounding up; `None` for
/// anything else, which goes through the full quantity parser.
#[inline]
fn fast_decimal_milli(b: &[u8]) -> Option<i64> {
    let dot = b.iter().position(|&c| c == b'.');
    let (int, frac) = match dot {
        Some(i) => (&b[..i], &b[i + 1..]),
        None => (b, &b[..0]),
    };
    if int.is_empty() || int.len() > 12 || (dot.is_some() && frac.is_empty()) {
        return None;
    }
    if !int.iter().all(u8::is_ascii_digit) || !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut milli = int
        .iter()
        .fold(0_i64, |acc, d| acc * 10 + i64::from(d - b'0'))
        * 1000;
    for (i, d) in frac.iter().enumerate() {
        let d = i64::from(d - b'0');
        match i {
            0 => milli += d * 100,
            1 => milli += d * 10,
            2 => milli += d,
            _ => {
                if d != 0 {
                    // Any non-zero digit below a millicore rounds up.
                    return Some(milli + 1);
                }
            }
        }
    }
    Some(milli)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rows(text: &str) -> Result<Vec<(usize, i64, String, Event)>, TraceError> {
        let mut r = TraceReader::new(text.as_bytes());
        let mut out = Vec::new();
        while let Some(row) = r.next_row()? {
            let k = &r.keys()[row.key as usize];
            let name = format!("{}/{}/{}/{}", k.namespace, k.workload, k.pod, k.container);
            out.push((row.line, row.timestamp.unix_nanos(), name, row.event));
        }
        Ok(out)
    }

    #[test]
    fn parses_usage_and_oom_rows() {
        let text = format!(
            "{HEADER}\n1700000000,ns,web,web-1,app,0.5,268435456,\n2023-11-14T22:13:21Z,ns,web,web-1,app,,256Mi,\n\n1700000002.5,ns,web,web-1,app,,536870912,oom\n"
        );
        let r = rows(&text).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(
            r[0].3,
            Event::Usage {
                cpu_millis: Some(500),
                memory_bytes: Some(268_435_456)
            }
        );
        assert_eq!(r[1].1, 1_700_000_001 * 1_000_000_000);
        assert_eq!(
            r[1].3,
            Event::Usage {
                cpu_millis: None,
                memory_bytes: Some(268_435_456)
            }
        );
        assert_eq!(r[2].0, 5);
        assert_eq!(r[2].1, 1_700_000_002_500_000_000);
        assert_eq!(
            r[2].3,
            Event::Oom {
                request_bytes: 536_870_912
            }
        );
        assert_eq!(r[0].2, "ns/web/web-1/app");
    }

    #[test]
    fn containers_are_interned_in_order_of_appearance() {
        let text = format!("{HEADER}\n1,ns,w,p,c,1,1,\n2,ns,w,p,d,1,1,\n3,ns,w,p,c,1,1,\n");
        let mut r = TraceReader::new(text.as_bytes());
        let mut seen = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            seen.push((row.key, row.new_key));
        }
        assert_eq!(seen, [(0, true), (1, true), (0, false)]);
        assert_eq!(&*r.keys()[1].container, "d");
    }

    #[test]
    fn cpu_rounds_up_to_millicores() {
        assert_eq!(parse_cpu_millis("0.5"), Ok(500));
        assert_eq!(parse_cpu_millis("0.0004"), Ok(1));
        assert_eq!(parse_cpu_millis("1.0000"), Ok(1000));
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
        assert_eq!(parse_cpu_millis("0.123"), Ok(123));
        assert_eq!(parse_cpu_millis("0.1231"), Ok(124));
        assert_eq!(parse_cpu_millis("250m"), Ok(250));
        assert!(
            parse_cpu_millis("1e13")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(parse_cpu_millis("9e12"), Ok(9_000_000_000_000_000));
        assert!(parse_bytes("1e19").unwrap_err().contains("out of range"));
        assert_eq!(parse_bytes("9E"), Ok(9_000_000_000_000_000_000));
    }

    #[test]
    fn malformed_lines_name_line_and_reason() {
        let cases = [
            ("1,ns,w,p,c,1,1", "expected 8 comma-separated fields"),
            ("1,ns,w,p,c,1,1,,", "too many fields"),
            ("x,ns,w,p,c,1,1,", "invalid timestamp"),
            ("1,,w,p,c,1,1,", "namespace is empty"),
            ("1,ns,w,p,c,,,", "needs cpu_cores or memory_bytes"),
            ("1,ns,w,p,c,abc,1,", "cpu_cores"),
            ("1,ns,w,p,c,1,1,boom", "unknown event"),
            ("1,ns,w,p,c,1,1,oom", "must leave cpu_cores empty"),
            ("1,ns,w,p,c,,,oom", "needs memory_bytes"),
            ("1,\"ns\",w,p,c,1,1,", "quoted"),
        ];
        for (line, want) in cases {
            let text = format!("{HEADER}\n1,ns,w,p,c,1,1,\n{line}\n");
            let err = rows(&text).unwrap_err();
            let msg = err.to_string();
            assert!(msg.starts_with("line 3: "), "{msg}");
            assert!(msg.contains(want), "{line}: {msg}");
        }
    }

    #[test]
    fn header_is_required() {
        assert!(rows("").unwrap_err().to_string().contains("empty trace"));
        let e = rows("time,ns\n").unwrap_err().to_string();
        assert!(e.starts_with("line 1: expected the header"), "{e}");
        assert!(rows(&format!("\u{feff}{HEADER}\r\n1,a,b,c,d,1,,\r\n")).is_ok());
    }

    proptest::proptest! {
        #[test]
        fn fast_path_matches_the_quantity_parser(int in 0u64..100_000, frac in proptest::option::of(0u64..1_000_000_000), width in 1usize..10) {
            let s = match frac {
                Some(f) => format!("{int}.{:0width$}", f % 10u64.pow(width as u32)),
                None => format!("{int}"),
            };
            let fast = fast_decimal_milli(s.as_bytes());
            let slow = quantity::parse(&s).map(|q| q.milli_value());
            proptest::prop_assert_eq!(fast, slow.ok());
        }

        #[test]
        fn arbitrary_lines_never_panic(line in ".{0,80}") {
            let text = format!("{HEADER}\n{line}\n");
            let _ = rows(&text);
        }
    }
}
