//! LimitRange items as plain values, and their merge into the one item per type that has the
//! same effect as all of a namespace's LimitRanges (upstream
//! `utils/limitrange/limit_range_calculator.go`).
//!
//! The merge, per type (`Container` or `Pod`), over the items of that type that set any of
//! `max`, `min` or `default`: the last `default` seen replaces the whole map; `max` keeps the
//! lowest and `min` the highest value of cpu and memory (the first item's map is taken whole,
//! so it may carry other resources too). Nothing applies when no such item exists.

use crate::pod::{CPU, MEMORY, ResourceMap};
use crate::quantity::Quantity;

/// The LimitRange item type that bounds each container.
pub const LIMIT_TYPE_CONTAINER: &str = "Container";
/// The LimitRange item type that bounds the sum over a pod's containers.
pub const LIMIT_TYPE_POD: &str = "Pod";

/// One `spec.limits[]` entry of a LimitRange, as far as the VPA uses it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitRangeItem {
    /// `type`: `Container`, `Pod` or `PersistentVolumeClaim`.
    pub type_: String,
    /// `max`.
    pub max: Option<ResourceMap>,
    /// `min`.
    pub min: Option<ResourceMap>,
    /// `default` (the default limit).
    pub default: Option<ResourceMap>,
}

impl LimitRangeItem {
    /// `max[resource]`, if set.
    pub fn max_of(&self, resource: &str) -> Option<&Quantity> {
        self.max.as_ref().and_then(|m| m.get(resource))
    }

    /// `min[resource]`, if set.
    pub fn min_of(&self, resource: &str) -> Option<&Quantity> {
        self.min.as_ref().and_then(|m| m.get(resource))
    }

    /// `default[resource]`, if set.
    pub fn default_of(&self, resource: &str) -> Option<&Quantity> {
        self.default.as_ref().and_then(|m| m.get(resource))
    }
}

/// The merged LimitRange items of one namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamespaceLimits {
    /// The merged `Container` item, if any LimitRange has one.
    pub container: Option<LimitRangeItem>,
    /// The merged `Pod` item, if any LimitRange has one.
    pub pod: Option<LimitRangeItem>,
}

impl NamespaceLimits {
    /// No LimitRange in the namespace.
    pub const NONE: NamespaceLimits = NamespaceLimits {
        container: None,
        pod: None,
    };

    /// Merges every item of every LimitRange of a namespace, in the order given.
    pub fn from_items<'a, I>(items: I) -> NamespaceLimits
    where
        I: IntoIterator<Item = &'a LimitRangeItem>,
        I::IntoIter: Clone,
    {
        let items = items.into_iter();
        NamespaceLimits {
            container: merge(items.clone(), LIMIT_TYPE_CONTAINER),
            pod: merge(items, LIMIT_TYPE_POD),
        }
    }
}

/// The item of type `limit_type` that has the effect of all `items` of that type together,
/// or `None` when none of them sets max, min or default.
pub fn merge<'a>(
    items: impl IntoIterator<Item = &'a LimitRangeItem>,
    limit_type: &str,
) -> Option<LimitRangeItem> {
    let mut out = LimitRangeItem {
        type_: limit_type.to_string(),
        ..Default::default()
    };
    for item in items {
        if item.type_ != limit_type
            || (item.max.is_none() && item.min.is_none() && item.default.is_none())
        {
            continue;
        }
        if item.default.is_some() {
            out.default.clone_from(&item.default);
        }
        for resource in [CPU, MEMORY] {
            // On a tie the later item's quantity (and so its text form) wins, as upstream.
            merge_one(&mut out.max, item.max.as_ref(), resource, |old, new| {
                if old < new { old } else { new }
            });
            merge_one(&mut out.min, item.min.as_ref(), resource, |old, new| {
                if old > new { old } else { new }
            });
        }
    }
    (out.max.is_some() || out.min.is_some() || out.default.is_some()).then_some(out)
}

/// Folds `item[resource]` into `acc[resource]` with `pick`; the first map is taken whole.
fn merge_one(
    acc: &mut Option<ResourceMap>,
    item: Option<&ResourceMap>,
    resource: &str,
    pick: fn(Quantity, Quantity) -> Quantity,
) {
    let Some(item) = item else { return };
    let Some(acc) = acc.as_mut() else {
        *acc = Some(item.clone());
        return;
    };
    if let Some(new) = item.get(resource) {
        let merged = match acc.remove(resource) {
            Some(old) => pick(old, new.clone()),
            None => new.clone(),
        };
        acc.insert(resource.to_string(), merged);
    }
}

#[cfg(test)]
mod tests;
