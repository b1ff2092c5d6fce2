//! One loop of the updater for one VPA, as an ordered sequence of actions (upstream
//! `RunOnce`, per VPA).
//!
//! A [`VpaRound`] yields its actions one at a time, because later decisions depend on the
//! outcome of earlier ones (a failed resize falls back to eviction; every successful eviction
//! or resize uses up the replica group's tolerance). The edge executes each eviction or
//! resize, after waiting on the matching [`crate::rate_limit::TokenBucket`], and reports the
//! [`Outcome`] with [`VpaRound::report`] before asking for the next action; an unreported
//! action counts as succeeded. [`plan_vpa`] and [`plan_loop`] collect a whole plan that way.
//!
//! The order within a VPA is upstream's:
//! 1. with the `CPUStartupBoost` gate and a boost on the VPA, unboost the pods whose boost
//!    expired (pods still carrying a boost annotation take no other update in the loop);
//! 2. nothing more for modes `Off` and `Initial`, or for `InPlace` without its gate;
//! 3. in-place modes: pods the in-place restriction lets through, in priority order and
//!    admitted by the eviction requirements, are resized (or go to the eviction list);
//!    `Recreate`/`Auto`: evictable pods in priority order, admitted, go to the eviction list;
//! 4. the eviction list, each pod checked against the budget again;
//! 5. skips for pods that need an update but were filtered out before ordering.

use crate::action::{
    Action, ContainerChange, ContainerPatch, EvictReason, Outcome, ResizePatch, ResizeReason,
    SkipReason,
};
use crate::eviction_requirements::admit;
use crate::in_place::{
    DeferCause, FallbackCause, InPlaceDecision, InPlaceTracker, RejectionCause, ResizeStatus,
    can_in_place_update, likely_rejection,
};
use crate::priority::{Accepted, PodPriority, UpdateReason, evaluate, sort_for_update};
use crate::restriction::ReplicaGroups;
use crate::settings::UpdaterSettings;
use crate::startup_boost::{can_unboost, expired_boosts, has_startup_boost};
use crate::view::{ContainerResources, OwnerReplicas, PodView, UpdateMode, VpaView};
use vpa_core::time::Timestamp;

/// One VPA with its live pods and their owners' replica counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VpaInput {
    /// The VPA.
    pub vpa: VpaView,
    /// Its live pods.
    pub pods: Vec<PodView>,
    /// Replica counts of the pods' owners.
    pub owners: Vec<OwnerReplicas>,
}

/// Per-VPA counts for the updater's gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoundCounts {
    /// Live pods of the VPA.
    pub controlled: usize,
    /// Pods ordered for eviction (modes `Recreate`/`Auto`).
    pub evictable: usize,
    /// Pods ordered for in-place updates (in-place modes).
    pub in_place_updatable: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Unboost(usize),
    Prepare,
    InPlace(usize),
    Evict(usize),
    Trailing(usize),
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Awaiting {
    Unboost(usize),
    InPlace {
        index: usize,
        set: Vec<(usize, ContainerResources)>,
    },
    Evict(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Candidate {
    index: usize,
    reason: UpdateReason,
}

/// The decisions of one loop for one VPA; see the module docs.
#[derive(Debug, Clone)]
pub struct VpaRound<'a> {
    vpa: &'a VpaView,
    pods: &'a [PodView],
    settings: UpdaterSettings,
    now: Timestamp,
    groups: ReplicaGroups,
    excluded: Vec<bool>,
    unboost: Vec<usize>,
    in_place: Vec<Candidate>,
    evictions: Vec<(usize, EvictReason)>,
    trailing: Vec<(usize, SkipReason)>,
    phase: Phase,
    awaiting: Option<Awaiting>,
    counts: RoundCounts,
}

impl<'a> VpaRound<'a> {
    /// Starts the round: builds the replica groups and finds the pods to unboost.
    pub fn new(
        vpa: &'a VpaView,
        pods: &'a [PodView],
        owners: &[OwnerReplicas],
        settings: &UpdaterSettings,
        now: Timestamp,
    ) -> Self {
        let groups = ReplicaGroups::build(vpa, pods, owners, settings);
        let mut excluded = vec![false; pods.len()];
        let mut unboost = Vec::new();
        if settings.gates.cpu_startup_boost && has_startup_boost(vpa) {
            for (i, pod) in pods.iter().enumerate() {
                if pod.has_boost_annotation() {
                    if let Some(e) = excluded.get_mut(i) {
                        *e = true;
                    }
                    if !expired_boosts(pod, vpa, now).is_empty() {
                        unboost.push(i);
                    }
                }
            }
        }
        VpaRound {
            vpa,
            pods,
            settings: *settings,
            now,
            groups,
            excluded,
            unboost,
            in_place: Vec::new(),
            evictions: Vec::new(),
            trailing: Vec::new(),
            phase: Phase::Unboost(0),
            awaiting: None,
            counts: RoundCounts {
                controlled: pods.len(),
                ..RoundCounts::default()
            },
        }
    }

    /// The replica groups with their counters as of now.
    pub fn groups(&self) -> &ReplicaGroups {
        &self.groups
    }

    /// The counts for the gauges (complete once the round has ordered its pods).
    pub fn counts(&self) -> RoundCounts {
        self.counts
    }

    /// Reports the outcome of the last eviction or resize.
    pub fn report(&mut self, outcome: Outcome, tracker: &mut InPlaceTracker) {
        if let Some(a) = self.awaiting.take() {
            self.settle(a, outcome, tracker);
        }
    }

    /// The next action, or `None` when the round is over. An eviction or resize whose
    /// outcome was not reported counts as succeeded.
    pub fn next(&mut self, tracker: &mut InPlaceTracker) -> Option<Action<'a>> {
        if let Some(a) = self.awaiting.take() {
            self.settle(a, Outcome::Succeeded, tracker);
        }
        loop {
            match self.phase {
                Phase::Unboost(k) => {
                    let Some(&i) = self.unboost.get(k) else {
                        self.phase = Phase::Prepare;
                        continue;
                    };
                    self.phase = Phase::Unboost(k + 1);
                    if let Some(a) = self.unboost_step(i) {
                        return Some(a);
                    }
                }
                Phase::Prepare => self.prepare(tracker),
                Phase::InPlace(k) => {
                    let Some(&c) = self.in_place.get(k) else {
                        self.phase = Phase::Evict(0);
                        continue;
                    };
                    self.phase = Phase::InPlace(k + 1);
                    if let Some(a) = self.in_place_step(c, tracker) {
                        return Some(a);
                    }
                }
                Phase::Evict(k) => {
                    let Some(&(i, reason)) = self.evictions.get(k) else {
                        self.phase = Phase::Trailing(0);
                        continue;
                    };
                    self.phase = Phase::Evict(k + 1);
                    if let Some(a) = self.evict_step(i, reason, tracker) {
                        return Some(a);
                    }
                }
                Phase::Trailing(k) => {
                    let Some(&(i, why)) = self.trailing.get(k) else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    self.phase = Phase::Trailing(k + 1);
                    if let Some(pod) = self.pods.get(i) {
                        return Some(Action::Skip { pod, why });
                    }
                }
                Phase::Done => return None,
            }
        }
    }

    fn unboost_step(&mut self, i: usize) -> Option<Action<'a>> {
        let pod = self.pods.get(i)?;
        match can_unboost(
            pod,
            self.vpa,
            self.groups.stats_of(i),
            &self.settings.gates,
            self.now,
        ) {
            Ok(_) => {
                let patch = self.patch(pod);
                if patch.containers.is_empty() {
                    return Some(Action::Skip {
                        pod,
                        why: SkipReason::ResizeFailed(RejectionCause::NothingToPatch),
                    });
                }
                self.awaiting = Some(Awaiting::Unboost(i));
                Some(Action::ResizeInPlace {
                    pod,
                    reason: ResizeReason::Unboost,
                    patch,
                })
            }
            Err(b) => Some(Action::Skip {
                pod,
                why: SkipReason::Unboost(b),
            }),
        }
    }

    /// Orders the pods for updates (upstream: the restriction filter, the priority
    /// calculator, the eviction admission).
    fn prepare(&mut self, tracker: &mut InPlaceTracker) {
        let mode = self.vpa.mode;
        let in_place_mode = matches!(mode, UpdateMode::InPlaceOrRecreate | UpdateMode::InPlace);
        if !mode.updates_pods() || (mode == UpdateMode::InPlace && !self.settings.gates.in_place) {
            self.phase = Phase::Done;
            return;
        }
        let pods = self.pods;
        let mut ordered: Vec<(usize, PodPriority)> = Vec::new();
        let mut reasons: Vec<Option<UpdateReason>> = vec![None; pods.len()];
        for (i, pod) in pods.iter().enumerate() {
            if self.excluded.get(i).copied().unwrap_or(true) {
                continue;
            }
            let accepted: Option<Accepted> =
                evaluate(pod, self.vpa, &self.settings, tracker, self.now).ok();
            if in_place_mode {
                let d = can_in_place_update(
                    self.vpa,
                    pod,
                    self.groups.stats_of(i),
                    &self.settings,
                    tracker,
                    self.now,
                );
                let keep = match d {
                    InPlaceDecision::Approved => true,
                    InPlaceDecision::Infeasible | InPlaceDecision::Deferred(_) => {
                        mode == UpdateMode::InPlace
                    }
                    InPlaceDecision::Evict(_) => mode == UpdateMode::InPlaceOrRecreate,
                    InPlaceDecision::InfeasibleCached => {
                        self.trailing.push((i, SkipReason::InfeasibleCached));
                        continue;
                    }
                };
                match (keep, accepted) {
                    (true, Some(a)) => ordered.push((i, a.priority)),
                    (false, Some(_)) => self.trailing.push((i, filtered_in_place(d))),
                    _ => {}
                }
            } else {
                let check = self.groups.can_evict(i, pod, tracker, self.now);
                match (check, accepted) {
                    (Ok(()), Some(a)) => ordered.push((i, a.priority)),
                    (Err(b), Some(_)) => self.trailing.push((i, SkipReason::NotEvictable(b))),
                    _ => {}
                }
            }
            if let (Some(slot), Some(a)) = (reasons.get_mut(i), accepted) {
                *slot = Some(a.reason);
            }
        }
        sort_for_update(&mut ordered, pods);
        let requirements = self.vpa.eviction_requirements.as_deref();
        for (i, _) in ordered {
            let (Some(pod), Some(Some(reason))) = (pods.get(i), reasons.get(i).copied()) else {
                continue;
            };
            if !admit(requirements, pod) {
                self.trailing.push((i, SkipReason::EvictionRequirements));
            } else if in_place_mode {
                self.in_place.push(Candidate { index: i, reason });
            } else {
                self.evictions.push((i, EvictReason::Update(reason)));
            }
        }
        if in_place_mode {
            self.counts.in_place_updatable = self.in_place.len();
            self.phase = Phase::InPlace(0);
        } else {
            self.counts.evictable = self.evictions.len();
            self.phase = Phase::Evict(0);
        }
    }

    fn in_place_step(&mut self, c: Candidate, tracker: &mut InPlaceTracker) -> Option<Action<'a>> {
        let i = c.index;
        let pod = self.pods.get(i)?;
        let decision = can_in_place_update(
            self.vpa,
            pod,
            self.groups.stats_of(i),
            &self.settings,
            tracker,
            self.now,
        );
        let reason = match decision {
            InPlaceDecision::Deferred(cause) => {
                if self.vpa.mode == UpdateMode::InPlaceOrRecreate {
                    return Some(Action::Skip {
                        pod,
                        why: SkipReason::InPlaceDeferred(cause),
                    });
                }
                // Upstream falls through and sends the resize anyway in mode InPlace.
                ResizeReason::ResendWhileDeferred(c.reason, cause)
            }
            InPlaceDecision::Evict(cause) => {
                self.evictions
                    .push((i, EvictReason::InPlaceFallback(cause)));
                return None;
            }
            InPlaceDecision::InfeasibleCached => {
                return Some(Action::Skip {
                    pod,
                    why: SkipReason::InfeasibleCached,
                });
            }
            InPlaceDecision::Infeasible => {
                self.record_infeasible(pod, tracker);
                ResizeReason::RetryInfeasible(c.reason)
            }
            InPlaceDecision::Approved => ResizeReason::Update(c.reason),
        };
        if self.groups.group_of(i).is_none() {
            return self.resize_failed(i, pod, RejectionCause::NotInReplicaGroup);
        }
        let patch = self.patch(pod);
        if patch.containers.is_empty() {
            return self.resize_failed(i, pod, RejectionCause::NothingToPatch);
        }
        self.awaiting = Some(Awaiting::InPlace {
            index: i,
            set: patch
                .containers
                .iter()
                .map(|c| (c.index, c.resources))
                .collect(),
        });
        Some(Action::ResizeInPlace { pod, reason, patch })
    }

    /// A resize that failed: `InPlace` skips the pod, `InPlaceOrRecreate` falls back to the
    /// eviction list.
    fn resize_failed(
        &mut self,
        i: usize,
        pod: &'a PodView,
        cause: RejectionCause,
    ) -> Option<Action<'a>> {
        if self.vpa.mode == UpdateMode::InPlace {
            return Some(Action::Skip {
                pod,
                why: SkipReason::ResizeFailed(cause),
            });
        }
        self.evictions.push((
            i,
            EvictReason::InPlaceFallback(FallbackCause::Rejected(cause)),
        ));
        None
    }

    fn evict_step(
        &mut self,
        i: usize,
        reason: EvictReason,
        tracker: &mut InPlaceTracker,
    ) -> Option<Action<'a>> {
        let pod = self.pods.get(i)?;
        match self.groups.can_evict(i, pod, tracker, self.now) {
            Ok(()) => {
                self.awaiting = Some(Awaiting::Evict(i));
                Some(Action::Evict {
                    pod,
                    reason,
                    changes: changes(pod),
                })
            }
            Err(b) => Some(Action::Skip {
                pod,
                why: SkipReason::NotEvictable(b),
            }),
        }
    }

    fn record_infeasible(&self, pod: &PodView, tracker: &mut InPlaceTracker) {
        tracker.record_infeasible(
            &pod.uid,
            self.vpa.recommendation.clone().unwrap_or_default(),
        );
    }

    fn settle(&mut self, awaiting: Awaiting, outcome: Outcome, tracker: &mut InPlaceTracker) {
        match (awaiting, outcome) {
            (Awaiting::Unboost(i), Outcome::Succeeded)
            | (Awaiting::InPlace { index: i, .. }, Outcome::Succeeded) => {
                self.groups.record_in_place(i);
            }
            (Awaiting::Unboost(_), Outcome::Failed { .. }) => {}
            (Awaiting::InPlace { index, set }, Outcome::Failed { infeasible }) => {
                let Some(pod) = self.pods.get(index) else {
                    return;
                };
                if self.vpa.mode == UpdateMode::InPlace {
                    if infeasible {
                        self.record_infeasible(pod, tracker);
                    }
                    return;
                }
                let cause = if infeasible {
                    RejectionCause::NodeCapacity
                } else {
                    likely_rejection(pod, set.iter().map(|(j, r)| (*j, r)))
                };
                self.evictions.push((
                    index,
                    EvictReason::InPlaceFallback(FallbackCause::Rejected(cause)),
                ));
            }
            (Awaiting::Evict(i), Outcome::Succeeded) => {
                let pending = self.pods.get(i).is_some_and(PodView::is_pending);
                self.groups.record_evicted(i, pending);
            }
            (Awaiting::Evict(_), Outcome::Failed { .. }) => {}
        }
    }

    /// The resources an in-place resize sets: each container's new resources, except that
    /// (with the `CPUStartupBoost` gate) a container whose boost has not expired is left
    /// alone, and one whose boost expired gets its recommendation or, without one, its
    /// original resources.
    fn patch(&self, pod: &PodView) -> ResizePatch {
        let boost = self.settings.gates.cpu_startup_boost;
        let expired = if boost {
            expired_boosts(pod, self.vpa, self.now)
        } else {
            Vec::new()
        };
        let mut containers = Vec::new();
        for (index, c) in pod.containers.iter().enumerate() {
            let boosted = boost && pod.boosted_containers.contains(&c.name);
            let resources = if !boosted {
                c.new_resources
            } else if expired.contains(&c.name.as_str()) {
                c.new_resources.or(c.boost_original)
            } else {
                continue;
            };
            let Some(resources) = resources else {
                continue;
            };
            if resources.requests.is_empty() && resources.limits.is_empty() {
                continue;
            }
            containers.push(ContainerPatch {
                index,
                container_name: c.name.clone(),
                init: c.init,
                resources,
            });
        }
        ResizePatch {
            containers,
            remove_boost_annotations: expired.into_iter().map(str::to_string).collect(),
        }
    }
}

/// The skip reason of a pod that needs an update but which the in-place filter left out.
fn filtered_in_place(d: InPlaceDecision) -> SkipReason {
    match d {
        InPlaceDecision::Deferred(cause) => SkipReason::InPlaceDeferred(cause),
        InPlaceDecision::Infeasible => {
            SkipReason::InPlaceDeferred(DeferCause::Resizing(ResizeStatus::Infeasible))
        }
        InPlaceDecision::InfeasibleCached => SkipReason::InfeasibleCached,
        InPlaceDecision::Approved | InPlaceDecision::Evict(_) => {
            SkipReason::InPlaceDeferred(DeferCause::DisruptionBudget)
        }
    }
}

/// Requests and targets of the pod's recommended containers.
fn changes(pod: &PodView) -> Vec<ContainerChange> {
    pod.containers
        .iter()
        .filter_map(|c| {
            pod.recommendation_for(&c.name).map(|r| ContainerChange {
                container_name: c.name.clone(),
                requests: c.current().requests,
                target: r.target,
            })
        })
        .collect()
}

/// The plan of one VPA.
#[derive(Debug, Clone, PartialEq)]
pub struct VpaPlan<'a> {
    /// The VPA.
    pub vpa: &'a VpaView,
    /// Its actions, in order.
    pub actions: Vec<Action<'a>>,
    /// Its counts.
    pub counts: RoundCounts,
}

/// The whole plan of one VPA, assuming every eviction and resize succeeds.
pub fn plan_vpa<'a>(
    input: &'a VpaInput,
    settings: &UpdaterSettings,
    tracker: &mut InPlaceTracker,
    now: Timestamp,
) -> VpaPlan<'a> {
    let mut round = VpaRound::new(&input.vpa, &input.pods, &input.owners, settings, now);
    let mut actions = Vec::new();
    while let Some(a) = round.next(tracker) {
        actions.push(a);
    }
    VpaPlan {
        vpa: &input.vpa,
        actions,
        counts: round.counts(),
    }
}

/// The plan of one loop over these VPAs, assuming every eviction and resize succeeds. It
/// first calls [`InPlaceTracker::begin_loop`] with the pods of `inputs` (an edge that drives
/// [`VpaRound`]s itself calls it with every live pod).
pub fn plan_loop<'a>(
    inputs: &'a [VpaInput],
    settings: &UpdaterSettings,
    tracker: &mut InPlaceTracker,
    now: Timestamp,
) -> Vec<VpaPlan<'a>> {
    tracker.begin_loop(inputs.iter().flat_map(|i| i.pods.iter()));
    inputs
        .iter()
        .map(|i| plan_vpa(i, settings, tracker, now))
        .collect()
}

#[cfg(test)]
mod tests;
