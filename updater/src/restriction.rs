//! Replica groups and the disruption budget of one VPA in one loop (upstream
//! `pods_restriction_factory.go`, `pods_eviction_restriction.go`).
//!
//! A VPA's pods are grouped by their controlling owner. A group with fewer live pods than
//! `updatePolicy.minReplicas` (else `--min-replicas`) is dropped, so its pods are neither
//! evicted nor resized, except when one of its pods still carries a CPU startup boost
//! annotation, or when the VPA resizes in place with `--in-place-skip-disruption-budget`
//! (then the group is kept but blocks evictions). A group may lose
//! `int(configured × --eviction-tolerance)` pods at once, and always one when all its pods
//! run. Evictions and in-place updates started in the loop share the same counters.

use crate::in_place::{InPlaceTracker, can_evict_in_placing_pod, is_in_place_updating};
use crate::settings::UpdaterSettings;
use crate::view::{OwnerKind, OwnerRef, OwnerReplicas, PodView, UpdateMode, VpaView};
use std::collections::HashMap;
use vpa_core::time::Timestamp;

/// The counters of one replica group (upstream `singleGroupStats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// The owner's configured replicas.
    pub configured: i64,
    /// Live pods in phase `Pending`.
    pub pending: i64,
    /// Live pods not `Pending`.
    pub running: i64,
    /// `int(configured × --eviction-tolerance)`.
    pub eviction_tolerance: i64,
    /// Pods (not `Pending`) evicted in this loop.
    pub evicted: i64,
    /// Pods already resizing when the loop started.
    pub in_place_update_ongoing: i64,
    /// Pods resized in place in this loop.
    pub in_place_update_initiated: i64,
    /// The group has fewer pods than minReplicas and was kept for in-place updates only.
    pub below_min_replicas: bool,
}

impl GroupStats {
    /// True when one more pod of the group may be disrupted (upstream `isPodDisruptable`).
    pub fn is_pod_disruptable(&self) -> bool {
        let should_be_alive = self.configured - self.eviction_tolerance;
        let actually_alive = self.running - (self.evicted + self.in_place_update_initiated);
        actually_alive > should_be_alive
            || (self.configured == self.running
                && self.eviction_tolerance == 0
                && self.evicted == 0
                && self.in_place_update_initiated == 0)
    }
}

/// Why an owner's configured replicas are unknown; its group is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplicaCountError {
    /// A ReplicationController, ReplicaSet or StatefulSet is missing, or has no or zero
    /// `spec.replicas`.
    NoReplicas,
    /// A DaemonSet is missing or has no ready pods.
    NoReadyPods,
}

/// The configured replicas of an owner (`count` as in [`OwnerReplicas::count`], `live`
/// the group's live pods): `spec.replicas`, a DaemonSet's `numberReady`, a Job's live pods,
/// and zero for other kinds.
pub fn configured_replicas(
    kind: OwnerKind,
    count: Option<i32>,
    live: i64,
) -> Result<i64, ReplicaCountError> {
    match kind {
        OwnerKind::ReplicationController | OwnerKind::ReplicaSet | OwnerKind::StatefulSet => {
            match count {
                Some(n) if n != 0 => Ok(i64::from(n)),
                _ => Err(ReplicaCountError::NoReplicas),
            }
        }
        OwnerKind::DaemonSet => match count {
            Some(n) if n != 0 => Ok(i64::from(n)),
            _ => Err(ReplicaCountError::NoReadyPods),
        },
        OwnerKind::Job => Ok(live),
        OwnerKind::Other => Ok(0),
    }
}

/// Where a pod stands with respect to replica groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Membership {
    /// In the group with this index.
    Group(usize),
    /// No owner reference has `controller: true`.
    NoController,
    /// The group has fewer live pods than required.
    TooFewReplicas {
        /// Live pods of the group.
        live: i64,
        /// minReplicas in effect.
        required: i64,
    },
    /// The owner's replica count is unknown.
    ReplicasUnknown(ReplicaCountError),
}

/// Why a pod may not be evicted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvictBlock {
    /// The pod is not in a replica group.
    NotInGroup(Membership),
    /// The group is below minReplicas (kept for in-place updates only).
    BelowMinReplicas,
    /// The pod is resizing and none of the fallback rules applies yet.
    ResizeInProgress,
    /// The group cannot tolerate another disruption.
    DisruptionBudget,
}

/// The replica groups of one VPA's pods for one loop, with their counters.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaGroups {
    owners: Vec<OwnerRef>,
    stats: Vec<GroupStats>,
    membership: Vec<Membership>,
}

impl ReplicaGroups {
    /// Groups `pods` (indexes are kept) by owner (upstream `GetCreatorMaps`). `owners` gives
    /// the replica counts; an owner missing from it has no count.
    pub fn build(
        vpa: &VpaView,
        pods: &[PodView],
        owners: &[OwnerReplicas],
        settings: &UpdaterSettings,
    ) -> Self {
        let mut index: HashMap<&OwnerRef, usize> = HashMap::new();
        let mut keys: Vec<&OwnerRef> = Vec::new();
        let mut members: Vec<Vec<usize>> = Vec::new();
        let mut pod_group: Vec<Option<usize>> = Vec::with_capacity(pods.len());
        for (i, pod) in pods.iter().enumerate() {
            let g = pod.owner.as_ref().map(|o| {
                *index.entry(o).or_insert_with(|| {
                    keys.push(o);
                    members.push(Vec::new());
                    keys.len() - 1
                })
            });
            if let Some(g) = g
                && let Some(m) = members.get_mut(g)
            {
                m.push(i);
            }
            pod_group.push(g);
        }
        let counts: HashMap<&OwnerRef, Option<i32>> =
            owners.iter().map(|o| (&o.owner, o.count)).collect();
        let required = vpa.min_replicas.map_or(settings.min_replicas, i64::from);
        let skip_replica_check = matches!(
            vpa.mode,
            UpdateMode::InPlaceOrRecreate | UpdateMode::InPlace
        ) && settings.in_place_skip_disruption_budget;

        let mut out = ReplicaGroups {
            owners: Vec::new(),
            stats: Vec::new(),
            membership: Vec::with_capacity(pods.len()),
        };
        let mut outcome: Vec<Membership> = Vec::with_capacity(keys.len());
        for (owner, member) in keys.iter().zip(&members) {
            let live = member.len() as i64;
            let mut below_min_replicas = false;
            if live < required {
                let has_boosted_pod = member
                    .iter()
                    .filter_map(|&i| pods.get(i))
                    .any(PodView::has_boost_annotation);
                if !has_boosted_pod && !skip_replica_check {
                    outcome.push(Membership::TooFewReplicas { live, required });
                    continue;
                }
                below_min_replicas = skip_replica_check;
            }
            let count = counts.get(owner).copied().flatten();
            let configured =
                match configured_replicas(OwnerKind::from_kind(&owner.kind), count, live) {
                    Ok(c) => c,
                    Err(e) => {
                        outcome.push(Membership::ReplicasUnknown(e));
                        continue;
                    }
                };
            let mut stats = GroupStats {
                configured,
                eviction_tolerance: tolerance(configured, settings.eviction_tolerance),
                below_min_replicas,
                ..GroupStats::default()
            };
            for pod in member.iter().filter_map(|&i| pods.get(i)) {
                if pod.is_pending() {
                    stats.pending += 1;
                }
                if is_in_place_updating(pod) {
                    stats.in_place_update_ongoing += 1;
                }
            }
            stats.running = live - stats.pending;
            outcome.push(Membership::Group(out.stats.len()));
            out.owners.push((*owner).clone());
            out.stats.push(stats);
        }
        out.membership = pod_group
            .into_iter()
            .map(|g| match g {
                Some(g) => outcome.get(g).copied().unwrap_or(Membership::NoController),
                None => Membership::NoController,
            })
            .collect();
        out
    }

    /// The membership of the pod with this index.
    pub fn membership(&self, pod: usize) -> Membership {
        self.membership
            .get(pod)
            .copied()
            .unwrap_or(Membership::NoController)
    }

    /// The group of the pod with this index.
    pub fn group_of(&self, pod: usize) -> Option<usize> {
        match self.membership(pod) {
            Membership::Group(g) => Some(g),
            _ => None,
        }
    }

    /// The counters of the pod's group.
    pub fn stats_of(&self, pod: usize) -> Option<&GroupStats> {
        self.group_of(pod).and_then(|g| self.stats.get(g))
    }

    /// The kept groups: owner and counters.
    pub fn groups(&self) -> impl Iterator<Item = (&OwnerRef, &GroupStats)> {
        self.owners.iter().zip(&self.stats)
    }

    /// Whether the pod with this index may be evicted now (upstream `CanEvict`): `Pending`
    /// pods always; not while the group is below minReplicas; a resizing pod only by the
    /// in-place fallback rules; otherwise by the disruption budget.
    pub fn can_evict(
        &self,
        index: usize,
        pod: &PodView,
        tracker: &mut InPlaceTracker,
        now: Timestamp,
    ) -> Result<(), EvictBlock> {
        let Some(stats) = self.stats_of(index) else {
            return Err(EvictBlock::NotInGroup(self.membership(index)));
        };
        if pod.is_pending() {
            return Ok(());
        }
        if stats.below_min_replicas {
            return Err(EvictBlock::BelowMinReplicas);
        }
        if is_in_place_updating(pod) {
            return match can_evict_in_placing_pod(pod, stats, tracker, now) {
                Some(_) => Ok(()),
                None => Err(EvictBlock::ResizeInProgress),
            };
        }
        if stats.is_pod_disruptable() {
            Ok(())
        } else {
            Err(EvictBlock::DisruptionBudget)
        }
    }

    /// Counts a successful eviction of the pod with this index (`Pending` pods do not count).
    pub fn record_evicted(&mut self, index: usize, pending: bool) {
        if pending {
            return;
        }
        if let Some(g) = self.group_of(index)
            && let Some(s) = self.stats.get_mut(g)
        {
            s.evicted += 1;
        }
    }

    /// Counts a successful in-place resize of the pod with this index.
    pub fn record_in_place(&mut self, index: usize) {
        if let Some(g) = self.group_of(index)
            && let Some(s) = self.stats.get_mut(g)
        {
            s.in_place_update_initiated += 1;
        }
    }
}

/// `int(configured × fraction)`, truncated toward zero as Go's conversion does.
fn tolerance(configured: i64, fraction: f64) -> i64 {
    let t = configured as f64 * fraction;
    if t.is_nan() { 0 } else { t as i64 }
}

#[cfg(test)]
mod tests;
