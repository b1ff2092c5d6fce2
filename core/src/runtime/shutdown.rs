//! Process shutdown as a cloneable cancellation handle: SIGTERM or SIGINT (or a programmatic
//! [`Shutdown::trigger`], for tests and fatal errors) resolves every clone's
//! [`Shutdown::cancelled`] future.
//!
//! A second SIGTERM/SIGINT while shutting down exits the process at once with status 1, as
//! Kubernetes controllers do (controller-runtime's signal handler), so a stuck shutdown can
//! still be interrupted.

use std::sync::{Arc, OnceLock};

use tokio_util::sync::{
    CancellationToken, WaitForCancellationFuture, WaitForCancellationFutureOwned,
};

/// A shutdown signal shared by all tasks of a process. Cloning shares the signal.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
    reason: Arc<OnceLock<String>>,
    parent: Option<Box<Shutdown>>,
}

impl Shutdown {
    /// A handle that only [`trigger`](Self::trigger) resolves.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle that SIGTERM and SIGINT trigger (reasons `"SIGTERM"`, `"SIGINT"`). Must be
    /// called inside a tokio runtime; fails if the signal handlers cannot be installed.
    pub fn with_signals() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let shutdown = Self::new();
        let handle = shutdown.clone();
        tokio::spawn(async move {
            let mut received = 0u32;
            loop {
                let name = tokio::select! {
                    Some(()) = term.recv() => "SIGTERM",
                    Some(()) = int.recv() => "SIGINT",
                    else => return,
                };
                received += 1;
                if received == 1 {
                    tracing::info!(signal = name, "shutting down");
                    handle.trigger(name);
                } else {
                    tracing::warn!(
                        signal = name,
                        "second signal while shutting down: exiting now"
                    );
                    std::process::exit(1);
                }
            }
        });
        Ok(shutdown)
    }

    /// Starts the shutdown. The first reason given is kept; later calls change nothing.
    pub fn trigger(&self, reason: impl Into<String>) {
        let _ = self.reason.set(reason.into());
        self.token.cancel();
    }

    /// True once shutdown has started (here or in a parent).
    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why shutdown started: the first [`trigger`](Self::trigger) reason of this handle or,
    /// for a [`child`](Self::child), of its parent. `None` before shutdown.
    pub fn reason(&self) -> Option<String> {
        if !self.is_triggered() {
            return None;
        }
        if let Some(r) = self.reason.get() {
            return Some(r.clone());
        }
        self.parent.as_ref().and_then(|p| p.reason())
    }

    /// Resolves when shutdown starts (at once if it already has).
    pub fn cancelled(&self) -> WaitForCancellationFuture<'_> {
        self.token.cancelled()
    }

    /// As [`cancelled`](Self::cancelled), owning the handle (`'static`, for spawned tasks and
    /// [`admin::serve`](super::admin::serve)).
    pub fn cancelled_owned(self) -> WaitForCancellationFutureOwned {
        self.token.cancelled_owned()
    }

    /// A handle that shuts down with this one, but whose own `trigger` leaves this one running
    /// (for stopping one component).
    pub fn child(&self) -> Shutdown {
        Shutdown {
            token: self.token.child_token(),
            reason: Arc::default(),
            parent: Some(Box::new(self.clone())),
        }
    }

    /// The underlying token, for APIs that take a [`CancellationToken`].
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Runs `fut` until it completes (`Some(output)`) or shutdown starts (`None`).
    pub async fn run_until<F: Future>(&self, fut: F) -> Option<F::Output> {
        self.token.run_until_cancelled(fut).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn trigger_resolves_all_clones_and_keeps_first_reason() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.is_triggered());
        assert_eq!(c.reason(), None);
        let waiter = tokio::spawn(c.clone().cancelled_owned());
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        s.trigger("test");
        s.trigger("later");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(c.is_triggered());
        assert_eq!(c.reason().as_deref(), Some("test"));
        // Already triggered: resolves at once.
        c.cancelled().await;
    }

    #[tokio::test]
    async fn child_follows_parent_but_not_the_reverse() {
        let parent = Shutdown::new();
        let child = parent.child();
        child.trigger("child only");
        assert!(child.is_triggered());
        assert!(!parent.is_triggered());
        assert_eq!(child.reason().as_deref(), Some("child only"));

        let child2 = parent.child();
        parent.trigger("parent");
        assert!(child2.is_triggered());
        assert_eq!(child2.reason().as_deref(), Some("parent"));
    }

    #[tokio::test]
    async fn run_until_stops_at_shutdown() {
        let s = Shutdown::new();
        assert_eq!(s.run_until(async { 7 }).await, Some(7));
        let s2 = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            s2.trigger("stop");
        });
        let out = s.run_until(std::future::pending::<()>()).await;
        assert_eq!(out, None);
    }

    #[tokio::test]
    async fn sigterm_triggers_shutdown() {
        // The only test in this binary that sends a signal: the handler is installed before the
        // signal is sent, so the default action (terminate) never runs.
        let s = Shutdown::with_signals().unwrap();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        tokio::time::timeout(Duration::from_secs(5), s.cancelled())
            .await
            .unwrap();
        assert_eq!(s.reason().as_deref(), Some("SIGTERM"));
    }
}
