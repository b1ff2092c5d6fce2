//! Offline replay: runs the recommendation engine over a usage trace, the way the recommender
//! would over the same samples, and reports the recommendations at chosen points in time.
//!
//! Each (namespace, workload, pod, container) gets a container state; the containers of all
//! pods of one workload aggregate into one state per container name, as pods that share a
//! label set do under one VPA. Rows are applied strictly in file order.
//!
//! With `every = D`, recommendations are emitted at the multiples of D since the Unix epoch,
//! starting with the first multiple after the first row: a point is emitted just before the
//! first row whose time is past it. The trace's clock is the latest time seen; at the end the
//! remaining points up to the clock are emitted, then the end of the trace itself.

use crate::trace::{ContainerKey, Event, Row, TraceError, TraceReader};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::sync::Arc;
use vpa_core::model::{
    AggregateContainerState, AggregationsConfig, ContainerState, Resources, UsageSample,
};
use vpa_core::recommendation::{
    ContainerRecommendation, OutputFormat, apply_vpa_policy, to_container_recommendations,
};
use vpa_core::recommender::PodResourceRecommender;
use vpa_core::time::{Duration, Timestamp};

/// Everything that shapes a replay.
#[derive(Debug, Clone)]
pub struct ReplaySettings {
    /// Histogram and window settings.
    pub aggregations: AggregationsConfig,
    /// Estimator settings.
    pub recommender: PodResourceRecommender,
    /// Rounding of the output quantities.
    pub format: OutputFormat,
    /// `--container-recommendation-max-allowed-*`.
    pub global_max_allowed: Resources,
    /// Emit at every multiple of this duration.
    pub every: Option<Duration>,
    /// Keep a usage series for plots, in buckets of this width.
    pub series_resolution: Option<Duration>,
}

/// Counters of what the replay saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Data rows.
    pub rows: u64,
    /// Accepted CPU samples.
    pub cpu_samples: u64,
    /// Accepted memory samples.
    pub memory_samples: u64,
    /// Samples rejected as duplicates, out of order or invalid.
    pub rejected_samples: u64,
    /// Recorded OOM kills.
    pub ooms: u64,
    /// OOM kills discarded as too old.
    pub rejected_ooms: u64,
}

/// One container's recommendation at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// When it was computed (trace time).
    pub time: Timestamp,
    /// Namespace.
    pub namespace: Arc<str>,
    /// Workload.
    pub workload: Arc<str>,
    /// The recommendation.
    pub recommendation: ContainerRecommendation,
}

/// Max usage per time bucket of one aggregate, for plots.
#[derive(Debug, Clone, Default)]
pub struct Series {
    /// (bucket start, max CPU millicores, max memory bytes) in time order.
    pub points: Vec<(Timestamp, Option<i64>, Option<i64>)>,
    /// OOM kills (time, request bytes).
    pub ooms: Vec<(Timestamp, i64)>,
}

/// What a replay produces.
#[derive(Debug, Clone, Default)]
pub struct ReplayOutput {
    /// Recommendations, sorted by time, namespace, workload, container.
    pub recommendations: Vec<Emitted>,
    /// Counters.
    pub stats: Stats,
    /// Usage per (namespace, workload, container), when asked for.
    pub series: BTreeMap<(Arc<str>, Arc<str>, String), Series>,
    /// Pods seen per (namespace, workload).
    pub pods: BTreeMap<(Arc<str>, Arc<str>), usize>,
}

struct Aggregate {
    state: AggregateContainerState,
    series: Option<Series>,
}

struct Workload {
    namespace: Arc<str>,
    name: Arc<str>,
    /// Container name to index in `Replay::aggregates`.
    containers: BTreeMap<String, usize>,
    pods: usize,
}

/// The replay state machine; feed it rows in file order.
pub struct Replay {
    settings: ReplaySettings,
    config: Arc<AggregationsConfig>,
    /// Per trace container key: its state and the index of its aggregate.
    containers: Vec<(ContainerState, usize)>,
    aggregates: Vec<Aggregate>,
    workloads: Vec<Workload>,
    workload_index: FxHashMap<(Arc<str>, Arc<str>), usize>,
    pods: FxHashSet<(usize, Arc<str>)>,
    clock: Option<Timestamp>,
    next_point: Option<Timestamp>,
    output: ReplayOutput,
}

impl Replay {
    /// A replay with the given settings.
    pub fn new(settings: ReplaySettings) -> Self {
        let config = Arc::new(settings.aggregations.clone());
        Self {
            settings,
            config,
            containers: Vec::new(),
            aggregates: Vec::new(),
            workloads: Vec::new(),
            workload_index: FxHashMap::default(),
            pods: FxHashSet::default(),
            clock: None,
            next_point: None,
            output: ReplayOutput::default(),
        }
    }

    /// Applies one row; `key` is the row's container (`TraceReader::keys()[row.key]`).
    pub fn feed(&mut self, row: &Row, key: &ContainerKey) {
        let ts = row.timestamp;
        self.advance_points(ts);
        self.clock = Some(self.clock.map_or(ts, |c| c.max(ts)));
        self.output.stats.rows += 1;

        let k = row.key as usize;
        if k >= self.containers.len() {
            let agg_idx = self.aggregate_for(key, ts);
            self.containers
                .resize(k + 1, (ContainerState::default(), agg_idx));
        }
        let (container, agg_idx) = match self.containers.get_mut(k) {
            Some(entry) => (&mut entry.0, entry.1),
            None => return,
        };
        let aggregate = &mut self.aggregates[agg_idx];
        let stats = &mut self.output.stats;
        match row.event {
            Event::Usage {
                cpu_millis,
                memory_bytes,
            } => {
                if let Some(cpu) = cpu_millis {
                    if container.add_sample(&UsageSample::cpu(ts, cpu), &mut aggregate.state) {
                        stats.cpu_samples += 1;
                    } else {
                        stats.rejected_samples += 1;
                    }
                }
                if let Some(mem) = memory_bytes {
                    if container.add_sample(&UsageSample::memory(ts, mem), &mut aggregate.state) {
                        stats.memory_samples += 1;
                    } else {
                        stats.rejected_samples += 1;
                    }
                }
                if let (Some(series), Some(res)) =
                    (aggregate.series.as_mut(), self.settings.series_resolution)
                {
                    record_point(series, ts, res, cpu_millis, memory_bytes);
                }
            }
            Event::Oom { request_bytes } => {
                match container.record_oom(ts, request_bytes, &mut aggregate.state) {
                    Ok(()) => stats.ooms += 1,
                    Err(_) => stats.rejected_ooms += 1,
                }
                if let Some(series) = aggregate.series.as_mut() {
                    series.ooms.push((ts, request_bytes));
                }
            }
        }
    }

    fn aggregate_for(&mut self, key: &ContainerKey, now: Timestamp) -> usize {
        let wkey = (key.namespace.clone(), key.workload.clone());
        let widx = match self.workload_index.get(&wkey) {
            Some(&i) => i,
            None => {
                let i = self.workloads.len();
                self.workloads.push(Workload {
                    namespace: key.namespace.clone(),
                    name: key.workload.clone(),
                    containers: BTreeMap::new(),
                    pods: 0,
                });
                self.workload_index.insert(wkey, i);
                i
            }
        };
        if self.pods.insert((widx, key.pod.clone())) {
            self.workloads[widx].pods += 1;
        }
        let next = self.aggregates.len();
        let w = &mut self.workloads[widx];
        let idx = *w
            .containers
            .entry(key.container.to_string())
            .or_insert(next);
        if idx == next {
            let mut state = AggregateContainerState::new(&self.config, now);
            state.is_under_vpa = true;
            self.aggregates.push(Aggregate {
                state,
                series: self.settings.series_resolution.map(|_| Series::default()),
            });
        }
        idx
    }

    fn advance_points(&mut self, ts: Timestamp) {
        let Some(every) = self.settings.every else {
            return;
        };
        if self.next_point.is_none() && self.clock.is_none() {
            self.next_point = Some(first_multiple_after(ts, every));
            return;
        }
        while let Some(p) = self.next_point {
            if ts > p {
                self.emit(p);
                self.next_point = Some(p.add(every));
            } else {
                break;
            }
        }
    }

    fn emit(&mut self, at: Timestamp) {
        let recommender = &self.settings.recommender;
        for w in &self.workloads {
            let mut merged = BTreeMap::new();
            for (name, &idx) in &w.containers {
                let mut fresh = AggregateContainerState::new(&self.config, at);
                // A fresh state has no reference time yet, so merging moves only the fresh
                // state's reference and leaves the source as it is.
                let source = &mut self.aggregates[idx].state;
                if fresh.merge(source).is_ok() {
                    fresh.controlled_resources = source.controlled_resources;
                    merged.insert(name.clone(), fresh);
                }
            }
            let estimates = recommender.recommend(&merged);
            let mut recs = to_container_recommendations(&estimates, &self.settings.format);
            apply_vpa_policy(&mut recs, None, &self.settings.global_max_allowed);
            for rec in recs {
                self.output.recommendations.push(Emitted {
                    time: at,
                    namespace: w.namespace.clone(),
                    workload: w.name.clone(),
                    recommendation: rec,
                });
            }
        }
    }

    /// Emits the remaining points and the end of the trace, and returns everything.
    pub fn finish(mut self) -> ReplayOutput {
        if let Some(clock) = self.clock {
            let mut last_emitted = None;
            if let Some(every) = self.settings.every {
                while let Some(p) = self.next_point {
                    if p > clock {
                        break;
                    }
                    self.emit(p);
                    last_emitted = Some(p);
                    self.next_point = Some(p.add(every));
                }
            }
            if last_emitted != Some(clock) {
                self.emit(clock);
            }
        }
        self.output.recommendations.sort_by(|a, b| {
            (
                a.time,
                &a.namespace,
                &a.workload,
                &a.recommendation.container_name,
            )
                .cmp(&(
                    b.time,
                    &b.namespace,
                    &b.workload,
                    &b.recommendation.container_name,
                ))
        });
        for w in &self.workloads {
            self.output
                .pods
                .insert((w.namespace.clone(), w.name.clone()), w.pods);
            for (name, &idx) in &w.containers {
                if let Some(series) = self.aggregates[idx].series.take() {
                    self.output
                        .series
                        .insert((w.namespace.clone(), w.name.clone(), name.clone()), series);
                }
            }
        }
        self.output
    }
}

/// The smallest multiple of `every` (from the Unix epoch) strictly after `t`.
fn first_multiple_after(t: Timestamp, every: Duration) -> Timestamp {
    let e = every.as_nanos().max(1);
    let n = t.unix_nanos();
    let next = (n.div_euclid(e) + 1).saturating_mul(e);
    Timestamp::from_unix_nanos(next)
}

fn record_point(
    series: &mut Series,
    ts: Timestamp,
    res: Duration,
    cpu: Option<i64>,
    mem: Option<i64>,
) {
    let r = res.as_nanos().max(1);
    let bucket = Timestamp::from_unix_nanos(ts.unix_nanos().div_euclid(r) * r);
    let max = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    };
    if let Some(last) = series.points.iter_mut().rev().find(|p| p.0 == bucket) {
        last.1 = max(last.1, cpu);
        last.2 = max(last.2, mem);
        return;
    }
    series.points.push((bucket, cpu, mem));
}

/// Rows per batch handed from the parsing thread to the engine.
const BATCH: usize = 4096;

/// A batch of parsed rows, with the identity of every container first seen in it.
type Batch = Vec<(Row, Option<ContainerKey>)>;

/// Replays a whole trace. Nothing is returned for a trace with a malformed line.
///
/// Parsing and the engine run on two threads (a parser feeding batches of rows through a
/// bounded channel), so the replay uses both cores; rows are still applied in file order.
pub fn replay_reader<R: BufRead + Send>(
    reader: R,
    settings: ReplaySettings,
) -> Result<ReplayOutput, TraceError> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch, TraceError>>(8);
    let mut replay = Replay::new(settings);
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let mut trace = TraceReader::new(reader);
            let mut batch: Batch = Vec::with_capacity(BATCH);
            loop {
                match trace.next_row() {
                    Ok(Some(row)) => {
                        let key = row.new_key.then(|| trace.keys()[row.key as usize].clone());
                        batch.push((row, key));
                        if batch.len() == BATCH {
                            let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                            if tx.send(Ok(full)).is_err() {
                                return;
                            }
                        }
                    }
                    Ok(None) => {
                        let _ = tx.send(Ok(batch));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
        let mut keys: Vec<ContainerKey> = Vec::new();
        for batch in rx {
            for (row, key) in batch? {
                if let Some(k) = key {
                    keys.push(k);
                }
                if let Some(k) = keys.get(row.key as usize) {
                    replay.feed(&row, k);
                }
            }
        }
        Ok::<(), TraceError>(())
    })?;
    let mut out = replay.finish();
    for series in out.series.values_mut() {
        series.points.sort_by_key(|p| p.0);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::trace::HEADER;

    fn settings(every: Option<Duration>) -> ReplaySettings {
        ReplaySettings {
            aggregations: AggregationsConfig::default(),
            recommender: PodResourceRecommender::default(),
            format: OutputFormat::default(),
            global_max_allowed: Resources::default(),
            every,
            series_resolution: None,
        }
    }

    fn constant_trace(minutes: i64) -> String {
        let mut s = format!("{HEADER}\n");
        let start = 1_700_000_000 / 60 * 60;
        for i in 0..minutes {
            s.push_str(&format!(
                "{},ns,web,web-1,app,0.5,209715200,\n",
                start + i * 60
            ));
        }
        s
    }

    #[test]
    fn worked_example_through_replay() {
        let out = replay_reader(constant_trace(1440).as_bytes(), settings(None)).unwrap();
        assert_eq!(out.recommendations.len(), 1);
        let r = &out.recommendations[0].recommendation;
        assert_eq!(r.target.amounts(), Resources::new(587, 262_144_000));
        assert_eq!(r.lower_bound.amounts().cpu, Some(585));
        assert_eq!(r.upper_bound.amounts().cpu, Some(1174));
        assert_eq!(r.uncapped_target, r.target);
        assert_eq!(out.stats.cpu_samples, 1440);
        assert_eq!(out.stats.memory_samples, 1440);
    }

    #[test]
    fn every_emits_at_aligned_points_and_at_the_end() {
        let start = 1_700_000_000 / 60 * 60; // a whole minute
        let out = replay_reader(
            constant_trace(150).as_bytes(),
            settings(Some(Duration::from_hours(1))),
        )
        .unwrap();
        let times: Vec<i64> = out
            .recommendations
            .iter()
            .map(|e| e.time.unix_seconds())
            .collect();
        let end = start + 149 * 60;
        let first = (start / 3600 + 1) * 3600;
        let mut want = vec![];
        let mut p = first;
        while p <= end {
            want.push(p);
            p += 3600;
        }
        if want.last() != Some(&end) {
            want.push(end);
        }
        assert_eq!(times, want);
    }

    #[test]
    fn pods_of_a_workload_share_one_aggregate() {
        let mut s = format!("{HEADER}\n");
        for i in 0..10 {
            s.push_str(&format!(
                "{},ns,web,web-1,app,0.5,100Mi,\n",
                1_700_000_000 + i * 60
            ));
            s.push_str(&format!(
                "{},ns,web,web-2,app,1.5,100Mi,\n",
                1_700_000_000 + i * 60
            ));
        }
        let out = replay_reader(s.as_bytes(), settings(None)).unwrap();
        assert_eq!(out.recommendations.len(), 1);
        assert_eq!(out.pods.values().copied().collect::<Vec<_>>(), [2]);
        assert_eq!(out.stats.cpu_samples, 20);
    }

    #[test]
    fn malformed_trace_gives_no_output() {
        let mut s = constant_trace(10);
        s.push_str("oops\n");
        let err = replay_reader(s.as_bytes(), settings(None)).unwrap_err();
        assert!(err.to_string().starts_with("line 12: "), "{err}");
    }
}
