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
//!
//! A page asked for with gzip is compressed once, on a blocking thread, by the first such
//! request of its rendering (under the same lock, so a burst of gzip requests compresses
//! it once) and kept beside the plain bytes ([`super::gzip`]).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use tokio::sync::Mutex;

use super::gzip::Gzipped;

/// How long a page may be served after it was rendered, if nothing changed.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(1);

/// A rendered page as served: its bytes, and once a client asked for gzip, those
/// compressed.
#[derive(Debug, Clone)]
pub(crate) struct Page {
    /// The page as rendered.
    pub plain: Bytes,
    /// The page gzipped: present when the request asked for it and compressing worked.
    pub gzip: Option<Gzipped>,
}

/// One page, rendered at a generation.
#[derive(Debug)]
struct Rendered {
    generation: u64,
    at: Instant,
    page: Page,
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
    /// With `gzip`, the page also carries its compressed bytes (compressed here once per
    /// rendering, unless compressing fails: then the caller serves the plain bytes).
    pub(crate) async fn get<F, Fut, E>(
        &self,
        generation: u64,
        gzip: bool,
        render: F,
    ) -> Result<Page, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, E>>,
    {
        let mut slot = self.slot.lock().await;
        let kept = match slot.take() {
            Some(kept) if kept.generation == generation && kept.at.elapsed() < MAX_AGE => kept,
            _ => {
                // Timed from before the render: the CPU and RSS it reads are at least this old.
                let at = Instant::now();
                let plain = render().await?;
                self.drop_when_too_old(at);
                Rendered {
                    generation,
                    at,
                    page: Page { plain, gzip: None },
                }
            }
        };
        let kept = slot.insert(kept);
        if gzip && kept.page.gzip.is_none() {
            kept.page.gzip = compress(kept.page.plain.clone()).await;
        }
        Ok(kept.page.clone())
    }

    /// Drops the page rendered `at` once it is too old to serve (unless replaced by then).
    fn drop_when_too_old(&self, at: Instant) {
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
    }

    /// Whether a page is kept.
    #[cfg(test)]
    async fn holds_a_page(&self) -> bool {
        self.slot.lock().await.is_some()
    }
}

/// `plain` gzipped on a blocking thread; `None` (logged) when that fails.
async fn compress(plain: Bytes) -> Option<Gzipped> {
    let size = plain.len();
    match tokio::task::spawn_blocking(move || Gzipped::of(&plain)).await {
        Ok(Ok(gzipped)) => Some(gzipped),
        Ok(Err(error)) => {
            tracing::warn!(%error, size, "could not gzip a page; serving it plain");
            None
        }
        Err(error) => {
            tracing::warn!(%error, size, "gzipping a page failed; serving it plain");
            None
        }
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
        assert_eq!(
            cache.get(1, false, || render("a")).await.map(|p| p.plain),
            Ok(Bytes::from("a"))
        );
        assert_eq!(
            cache.get(1, false, || render("b")).await.map(|p| p.plain),
            Ok(Bytes::from("a"))
        );
        assert_eq!(renders.load(Ordering::SeqCst), 1);
        assert_eq!(
            cache.get(2, false, || render("c")).await.map(|p| p.plain),
            Ok(Bytes::from("c"))
        );
        assert_eq!(renders.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_page_is_dropped_once_it_is_too_old_to_serve() {
        let cache = RenderCache::default();
        let page: Result<Page, ()> = cache.get(1, false, || async { Ok(Bytes::from("x")) }).await;
        assert_eq!(page.map(|p| p.plain), Ok(Bytes::from("x")));
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
        let failed: Result<Page, &str> = cache.get(1, false, || async { Err("no") }).await;
        assert_eq!(failed.map(|p| p.plain), Err("no"));
        let ok: Result<Page, &str> = cache.get(1, false, || async { Ok(Bytes::from("x")) }).await;
        assert_eq!(ok.map(|p| p.plain), Ok(Bytes::from("x")));
    }

    #[tokio::test]
    async fn a_page_is_gzipped_once_per_rendering_and_only_when_asked() {
        let cache = RenderCache::default();
        let text = "row\n".repeat(10_000);
        let render = || async { Ok::<_, ()>(Bytes::from(text.clone())) };
        let plain = cache.get(1, false, render).await.expect("page");
        assert!(plain.gzip.is_none());
        let first = cache.get(1, true, render).await.expect("page");
        let second = cache.get(1, true, render).await.expect("page");
        let (Some(first), Some(second)) = (first.gzip, second.gzip) else {
            panic!("asked for gzip, got none");
        };
        // The same bytes, not a second compression of the page.
        assert_eq!(first.whole().as_ptr(), second.whole().as_ptr());
        assert!(first.whole().len() < text.len() / 10);
        let again = cache.get(2, true, render).await.expect("page");
        let again = again.gzip.expect("gzip");
        assert_ne!(again.whole().as_ptr(), first.whole().as_ptr());
    }
}
