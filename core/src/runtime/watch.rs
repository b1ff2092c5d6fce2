//! Watch helpers shared by the binaries: the reconnect backoff, the namespace scoping of an
//! `Api`, and a reflector watch that keeps a store current.

use futures::StreamExt;
use kube::runtime::{WatchStreamExt, reflector, watcher};
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

/// A watch (with [`WatchBackoff`]) that keeps `writer`'s store current, `strip`ping each
/// object first (e.g. managedFields) and handing every watch error to `on_error`; runs until
/// dropped.
pub fn reflect<K, S, E>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    strip: S,
    on_error: E,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    S: FnMut(&mut K) + Send + 'static,
    E: Fn(&watcher::Error) + Send + 'static,
{
    watcher::watcher(api, config)
        .backoff(WatchBackoff::default())
        .modify(strip)
        .reflect(writer)
        .for_each(move |r| {
            if let Err(e) = r {
                on_error(&e);
            }
            futures::future::ready(())
        })
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
