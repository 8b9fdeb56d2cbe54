//! Rendered read pages kept while they are still true: `GET /api/v1/services` and the
//! table part of `GET /metrics` at 10,000 services are megabytes that take tens of
//! milliseconds to build, and fifty clients (or a dashboard per person) asking at once
//! would build them fifty times.
//!
//! A page is keyed on the tables' [`generation`](crate::runtime::Tables::generation),
//! which every write to a definition, a status row or the runtime's state bumps, and
//! kept at most [`MAX_AGE`] (the age the CPU and RSS columns may have anyway, as in
//! `Tables::state_with_usage`). One render at a time: requests that arrive during a
//! render wait for it and share its result (single flight), so a burst costs one render.
//! A page is dropped once it is too old to be served, so megabytes rendered at 10,000
//! services are not kept after the services are gone (issue 16).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::Mutex;

/// How long a page may be served after it was rendered, if nothing changed.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// One page, rendered at a generation.
#[derive(Debug)]
struct Rendered {
    generation: u64,
    at: Instant,
    body: Bytes,
}

/// The last rendering of one page.
#[derive(Debug, Default)]
pub(crate) struct RenderCache {
    /// Shared with the task that drops the page once it is too old to serve.
    slot: Arc<Mutex<Option<Rendered>>>,
}

impl RenderCache {
    /// The page at `generation`: the kept one when it was rendered at that generation
    /// less than [`MAX_AGE`] ago, else a new one from `render` (kept for the next caller).
    pub(crate) async fn get<F, Fut, E>(&self, generation: u64, render: F) -> Result<Bytes, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let mut slot = self.slot.lock().await;
        if let Some(kept) = slot.as_ref()
            && kept.generation == generation
            && kept.at.elapsed() < MAX_AGE
        {
            return Ok(kept.body.clone());
        }
        // Timed from before the render: the CPU and RSS it reads are at least this old.
        let at = Instant::now();
        let body = render().await?;
        *slot = Some(Rendered {
            generation,
            at,
            body: body.clone(),
        });
        let kept = Arc::downgrade(&self.slot);
        tokio::spawn(async move {
            tokio::time::sleep_until((at + MAX_AGE).into()).await;
            if let Some(kept) = kept.upgrade() {
                let mut slot = kept.lock().await;
                if slot.as_ref().is_some_and(|page| page.at == at) {
                    *slot = None;
                }
            }
        });
        Ok(body)
    }

    /// Whether a page is kept.
    #[cfg(test)]
    async fn holds_a_page(&self) -> bool {
        self.slot.lock().await.is_some()
    }
}

/// The pages of one API server.
#[derive(Debug, Default)]
pub(crate) struct ReadCaches {
    /// `GET /api/v1/services` without a tag.
    pub list: RenderCache,
    /// The table part of `GET /metrics`.
    pub metrics: RenderCache,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_page_is_rendered_again_only_when_the_generation_moves() {
        let cache = RenderCache::default();
        let renders = AtomicUsize::new(0);
        let render = |text: &'static str| {
            renders.fetch_add(1, Ordering::SeqCst);
            async move { Ok::<_, ()>(Bytes::from_static(text.as_bytes())) }
        };
        assert_eq!(cache.get(1, || render("a")).await, Ok(Bytes::from("a")));
        assert_eq!(cache.get(1, || render("b")).await, Ok(Bytes::from("a")));
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        assert_eq!(cache.get(2, || render("c")).await, Ok(Bytes::from("c")));
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_is_dropped_once_it_is_too_old_to_serve() {
        let cache = RenderCache::default();
        let page: Result<Bytes, ()> = cache.get(1, || async { Ok(Bytes::from("x")) }).await;
        assert_eq!(page, Ok(Bytes::from("x")));
        assert!(cache.holds_a_page().await);
        let deadline = Instant::now() + MAX_AGE * 10;
        while cache.holds_a_page().await {
            assert!(Instant::now() < deadline, "the page is still kept");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_failed_render_is_not_kept() {
        let cache = RenderCache::default();
        let failed: Result<Bytes, &str> = cache.get(1, || async { Err("no") }).await;
        assert_eq!(failed, Err("no"));
        let ok: Result<Bytes, &str> = cache.get(1, || async { Ok(Bytes::from("x")) }).await;
        assert_eq!(ok, Ok(Bytes::from("x")));
    }
}
