//! Derived views served from memory, each bounded in bytes: serialised region pages (one per region,
//! valid for the log size they were built at), and the discrepancy list (built at most once per
//! `DISCREPANCY_REFRESH` off the request path, every answer naming the log size it reflects).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::Value;

/// Region pages kept at most, in bytes (keys included). There are 91,756 regions; the demo's national,
/// province, kabupaten and kecamatan pages measure 3.8 to 11 KiB (curl, 2026-12-04), so the pages of
/// every level above the desa fit; past the bound the cache starts over.
pub const MAX_PAGE_CACHE_BYTES: usize = 128 << 20;
/// A page larger than this is served but not kept (it would crowd out hundreds of others).
const MAX_CACHED_PAGE_BYTES: usize = 1 << 20;

/// (log size, published size) a page was built at.
pub type Version = (u64, u64);

#[derive(Default)]
pub struct PageCache {
    inner: RwLock<Pages>,
}

#[derive(Default)]
struct Pages {
    map: HashMap<String, (Version, Bytes)>,
    bytes: usize,
}

impl PageCache {
    pub fn get(&self, key: &str, version: Version) -> Option<Bytes> {
        let pages = self.inner.read().expect("not poisoned");
        match pages.map.get(key) {
            Some((at, body)) if *at == version => Some(body.clone()),
            _ => None,
        }
    }

    pub fn put(&self, key: String, version: Version, body: Bytes) {
        let cost = key.len() + body.len();
        if body.len() > MAX_CACHED_PAGE_BYTES {
            return;
        }
        let mut pages = self.inner.write().expect("not poisoned");
        if let Some((_, old)) = pages.map.remove(&key) {
            pages.bytes -= key.len() + old.len();
        }
        if pages.bytes + cost > MAX_PAGE_CACHE_BYTES {
            pages.map.clear();
            pages.bytes = 0;
        }
        pages.bytes += cost;
        pages.map.insert(key, (version, body));
        debug_assert!(pages.bytes <= MAX_PAGE_CACHE_BYTES);
    }

    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.inner.read().unwrap().bytes
    }
}

/// The discrepancy list is rebuilt at most this often: building it reads every recap against the
/// state (16 ms at 2,000 TPS, more nationally), so rebuilding per request slowed every endpoint.
pub const DISCREPANCY_REFRESH: Duration = Duration::from_secs(1);
/// Serialised discrepancies kept at most; past it the smallest are left out and the answer says so.
pub const MAX_DISCREPANCY_BYTES: usize = 32 << 20;

/// One built discrepancy list.
pub struct Discrepancies {
    /// The state size and checkpoint it was built from.
    pub log_size: u64,
    pub checkpoint: Value,
    /// (level, region code or "" for the nation, the item's JSON serialised once), largest first.
    pub items: Vec<DiscrepancyItem>,
    pub coverage_gaps: usize,
    /// Items left out to keep within MAX_DISCREPANCY_BYTES.
    pub truncated: usize,
}

#[derive(Default)]
pub struct DerivedView {
    inner: Mutex<ViewState>,
}

#[derive(Default)]
struct ViewState {
    built: Option<Arc<Discrepancies>>,
    built_at: Option<Instant>,
    building: bool,
}

/// What a request should do about the view.
pub enum Plan {
    /// Serve this (current, or stale while a rebuild runs or until DISCREPANCY_REFRESH passed).
    Serve(Arc<Discrepancies>),
    /// Build it (this request is the one that does); serve the stale one meanwhile if there is one.
    Build(Option<Arc<Discrepancies>>),
}

impl DerivedView {
    pub fn plan(&self, log_size: u64, now: Instant) -> Plan {
        let mut view = self.inner.lock().expect("not poisoned");
        match &view.built {
            Some(built) if built.log_size == log_size => return Plan::Serve(built.clone()),
            Some(built)
                if view.building
                    || view
                        .built_at
                        .is_some_and(|at| now.duration_since(at) < DISCREPANCY_REFRESH) =>
            {
                return Plan::Serve(built.clone())
            }
            _ => {}
        }
        if view.building {
            // The first build is running and nothing is built yet: this request builds as well (only
            // until one exists).
            return Plan::Build(None);
        }
        view.building = true;
        Plan::Build(view.built.clone())
    }

    pub fn store(&self, built: Arc<Discrepancies>, now: Instant) {
        let mut view = self.inner.lock().expect("not poisoned");
        view.built = Some(built);
        view.built_at = Some(now);
        view.building = false;
    }

    /// A build that failed (its thread panicked): let the next request try again.
    pub fn abandon(&self) {
        self.inner.lock().expect("not poisoned").building = false;
    }
}

/// A discrepancy as served: its level and region (for filtering) and its JSON, serialised once
/// when the view is built, so neither the bound below nor a request serialises it again.
pub type DiscrepancyItem = (&'static str, String, Box<serde_json::value::RawValue>);

/// Keeps items (largest first) within MAX_DISCREPANCY_BYTES; returns how many were left out.
pub fn bound_items(items: &mut Vec<DiscrepancyItem>) -> usize {
    let mut bytes = 0usize;
    let keep = items
        .iter()
        .position(|(_, _, json)| {
            bytes += json.get().len();
            bytes > MAX_DISCREPANCY_BYTES
        })
        .unwrap_or(items.len());
    let left_out = items.len() - keep;
    items.truncate(keep);
    left_out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_cache_stays_within_its_bytes() {
        let cache = PageCache::default();
        let page = Bytes::from(vec![b'x'; 500_000]);
        for n in 0..1_000 {
            cache.put(format!("page-{n}"), (1, 1), page.clone());
            assert!(cache.bytes() <= MAX_PAGE_CACHE_BYTES);
        }
        assert_eq!(cache.get("page-999", (1, 1)), Some(page.clone()));
        assert_eq!(cache.get("page-999", (2, 1)), None, "another version");
        cache.put("huge".into(), (1, 1), Bytes::from(vec![0; 2 << 20]));
        assert_eq!(cache.get("huge", (1, 1)), None, "too large to keep");
    }

    #[test]
    fn the_view_is_built_once_per_refresh() {
        let view = DerivedView::default();
        let now = Instant::now();
        assert!(matches!(view.plan(10, now), Plan::Build(None)));
        // While the first build runs, others build too (nothing to serve yet).
        assert!(matches!(view.plan(10, now), Plan::Build(None)));
        let built = Arc::new(Discrepancies {
            log_size: 10,
            checkpoint: Value::Null,
            items: Vec::new(),
            coverage_gaps: 0,
            truncated: 0,
        });
        view.store(built, now);
        assert!(matches!(view.plan(10, now), Plan::Serve(_)));
        // The log grew: stale but recent, so served as it is.
        assert!(matches!(view.plan(11, now), Plan::Serve(_)));
        // After the refresh interval, one request rebuilds; others get the stale view meanwhile.
        let later = now + DISCREPANCY_REFRESH;
        assert!(matches!(view.plan(11, later), Plan::Build(Some(_))));
        assert!(matches!(view.plan(11, later), Plan::Serve(_)));
    }
}
