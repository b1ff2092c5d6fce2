//! One updater loop over a [`crate::snapshot`]: a [`VpaRound`] per VPA, each eviction or
//! resize executed through the [`Actuator`] after its [`TokenBucket`] allows it, the outcome
//! reported back to the round, the metrics counted. The in-place state and the two buckets
//! live across loops in the [`Updater`].
//!
//! A refused eviction (a PodDisruptionBudget's 429 included) is a normal "not now": the pod
//! stays and is considered again next loop. A resize refused for node capacity
//! ([`is_infeasible_rejection`]) is reported as infeasible, so the in-place rules fall back
//! or wait as they say. When a bucket cannot give a token before the loop's deadline, the
//! loop ends there, as upstream's does.

use crate::action::{Action, Outcome};
use crate::actuator::Actuator;
use crate::in_place::{InPlaceTracker, is_infeasible_rejection};
use crate::metrics::{LoopResult, UpdaterMetrics};
use crate::plan::{VpaInput, VpaRound};
use crate::rate_limit::TokenBucket;
use crate::settings::UpdaterSettings;
use std::sync::Arc;
use vpa_core::time::Timestamp;

/// What a loop did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopReport {
    /// VPAs processed.
    pub vpas: usize,
    /// Live pods of those VPAs.
    pub pods: usize,
    /// Evictions accepted.
    pub evicted: usize,
    /// Evictions refused.
    pub eviction_failures: usize,
    /// Resizes accepted.
    pub resized: usize,
    /// Resizes refused.
    pub resize_failures: usize,
    /// Pods skipped with a reason.
    pub skipped: usize,
    /// Set when the loop ended early (the rate limiter's deadline).
    pub aborted: Option<String>,
}

/// The updater's state across loops.
#[derive(Debug)]
pub struct Updater {
    settings: UpdaterSettings,
    tracker: InPlaceTracker,
    evictions: TokenBucket,
    resizes: TokenBucket,
    metrics: Arc<UpdaterMetrics>,
}

impl Updater {
    /// A new updater with its eviction and in-place buckets.
    pub fn new(
        settings: UpdaterSettings,
        (evictions, resizes): (TokenBucket, TokenBucket),
        metrics: Arc<UpdaterMetrics>,
    ) -> Self {
        Self {
            settings,
            tracker: InPlaceTracker::new(),
            evictions,
            resizes,
            metrics,
        }
    }

    /// The in-place state (tests, logs).
    pub fn tracker(&self) -> &InPlaceTracker {
        &self.tracker
    }

    /// Runs one loop over `inputs`, started at `now`, to end by `deadline`.
    pub async fn run_once<A: Actuator>(
        &mut self,
        inputs: &[VpaInput],
        actuator: &A,
        now: Timestamp,
        deadline: Timestamp,
    ) -> LoopReport {
        let mut report = LoopReport {
            vpas: inputs.len(),
            pods: inputs.iter().map(|i| i.pods.len()).sum(),
            ..LoopReport::default()
        };
        self.tracker
            .begin_loop(inputs.iter().flat_map(|i| i.pods.iter()));
        let (mut evictable, mut in_place) = (0, 0);
        'vpas: for input in inputs {
            let mut round =
                VpaRound::new(&input.vpa, &input.pods, &input.owners, &self.settings, now);
            if input.vpa.mode.is_deprecated() {
                tracing::warn!(vpa = %input.vpa.key(), "updateMode Auto is deprecated; use Recreate or InPlaceOrRecreate");
            }
            while let Some(action) = round.next(&mut self.tracker) {
                let pod = action.pod();
                let bucket = match &action {
                    Action::Evict { .. } => &mut self.evictions,
                    Action::ResizeInPlace { .. } => &mut self.resizes,
                    Action::Skip { why, .. } => {
                        tracing::debug!(pod = %pod.key(), vpa = %input.vpa.key(), ?why, "pod not updated");
                        report.skipped += 1;
                        continue;
                    }
                };
                match bucket.reserve(actuator.now(), Some(deadline)) {
                    Ok(wait) => {
                        if wait > vpa_core::time::Duration::ZERO {
                            actuator.wait(wait).await;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(vpa = %input.vpa.key(), "rate limiter: {e}; ending the loop");
                        report.aborted = Some(e.to_string());
                        evictable += round.counts().evictable;
                        in_place += round.counts().in_place_updatable;
                        break 'vpas;
                    }
                }
                let outcome = match &action {
                    Action::Evict {
                        reason, changes, ..
                    } => match actuator.evict(pod, &input.vpa, *reason, changes).await {
                        Ok(()) => {
                            tracing::info!(pod = %pod.key(), vpa = %input.vpa.key(), ?reason, "evicted");
                            report.evicted += 1;
                            self.metrics.evicted();
                            Outcome::Succeeded
                        }
                        Err(f) => {
                            if f.is_too_many_requests() {
                                tracing::info!(pod = %pod.key(), "eviction refused for now: {f}");
                            } else {
                                tracing::warn!(pod = %pod.key(), "eviction failed: {f}");
                            }
                            report.eviction_failures += 1;
                            self.metrics.eviction_failed();
                            Outcome::Failed { infeasible: false }
                        }
                    },
                    Action::ResizeInPlace { reason, patch, .. } => {
                        match actuator.resize(pod, &input.vpa, *reason, patch).await {
                            Ok(()) => {
                                tracing::info!(pod = %pod.key(), vpa = %input.vpa.key(), ?reason, "resized in place");
                                report.resized += 1;
                                self.metrics.resized();
                                Outcome::Succeeded
                            }
                            Err(f) => {
                                let infeasible = is_infeasible_rejection(
                                    &f.reason,
                                    f.causes.iter().map(String::as_str),
                                );
                                tracing::warn!(pod = %pod.key(), infeasible, "resize refused: {f}");
                                report.resize_failures += 1;
                                self.metrics.resize_failed(infeasible);
                                Outcome::Failed { infeasible }
                            }
                        }
                    }
                    Action::Skip { .. } => continue,
                };
                round.report(outcome, &mut self.tracker);
            }
            evictable += round.counts().evictable;
            in_place += round.counts().in_place_updatable;
        }
        self.metrics.set_counts(report.pods, evictable, in_place);
        self.metrics.loop_ended(if report.aborted.is_some() {
            LoopResult::Aborted
        } else {
            LoopResult::Done
        });
        report
    }
}

#[cfg(test)]
mod tests;
