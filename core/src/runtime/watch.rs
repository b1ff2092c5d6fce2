//! Watch helpers shared by the binaries: the reconnect backoff and the namespace scoping of
//! an `Api`.

use kube::{Api, Client, Resource};

/// Watch reconnect backoff: 0.5 s doubling to at most 5 s (kube's default grows to 30 s,
/// which after an API server restart left new objects unseen for up to half a minute).
#[derive(Debug, Clone)]
pub struct WatchBackoff {
    next: std::time::Duration,
}

impl Default for WatchBackoff {
    fn default() -> Self {
        Self {
            next: WATCH_BACKOFF_MIN,
        }
    }
}

const WATCH_BACKOFF_MIN: std::time::Duration = std::time::Duration::from_millis(500);
const WATCH_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Iterator for WatchBackoff {
    type Item = std::time::Duration;
    fn next(&mut self) -> Option<Self::Item> {
        let d = self.next;
        self.next = (self.next * 2).min(WATCH_BACKOFF_MAX);
        Some(d)
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        self.next = WATCH_BACKOFF_MIN;
    }
}

/// An API of all namespaces, or of one.
pub fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff;

    #[test]
    fn backoff_doubles_to_five_seconds_and_resets() {
        let mut b = WatchBackoff::default();
        let got: Vec<u128> = b.by_ref().take(6).map(|d| d.as_millis()).collect();
        assert_eq!(got, [500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next().map(|d| d.as_millis()), Some(500));
    }
}
