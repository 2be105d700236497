//! The sale page (`GET /v1/events/{id}`) rendered once per sale version and then served from
//! memory. In a flash sale every buyer reads the page first, tens of thousands of times a
//! second, while the state changes a few hundred times a second (once per command the shard
//! applies): rendering it once per version instead of once per request takes the JSON
//! encoding and the ETag hash off the hot path.
//!
//! A page is keyed by the engine's version of its sale (see `Engine::read_versioned`), which
//! changes with every applied command, so a cached page is never served for a state it was
//! not rendered from. Reads are not linearizable anyway (`Cache-Control: max-age=1`): a
//! page may be one command behind, exactly as an uncached read racing the shard would be.

use std::hash::Hasher;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::HeaderValue;
use parking_lot::RwLock;
use rustc_hash::{FxHashMap, FxHasher};
use taquilla_domain::SaleId;
use taquilla_engine::Engine;

use crate::error::{ApiError, Code};
use crate::views::SaleView;

/// One rendered sale page.
pub struct SalePage {
    pub version: u64,
    pub body: Bytes,
    /// A strong ETag: a hash of the body, quoted.
    pub etag: HeaderValue,
}

impl SalePage {
    /// Whether an `If-None-Match` header value names this page.
    pub fn matches(&self, if_none_match: &str) -> bool {
        let etag = self.etag.as_bytes();
        if_none_match
            .split(',')
            .map(str::trim)
            .any(|t| t == "*" || t.as_bytes() == etag || t.strip_prefix("W/").is_some_and(|w| w.as_bytes() == etag))
    }
}

/// The sale as the public sees it; `None` for drafts and archived sales, which are the
/// organiser's only (`404` to everyone else).
fn public_view(sale: SaleId, s: &taquilla_domain::SaleState) -> Option<SaleView> {
    s.sale.as_ref().filter(|x| x.status.is_public())?;
    SaleView::new(sale, s)
}

/// The newest rendered page of each sale (one entry per sale, and sales are bounded by the
/// engine's limits, so the cache is too).
#[derive(Default)]
pub struct SalePages {
    pages: RwLock<FxHashMap<SaleId, Arc<SalePage>>>,
}

impl SalePages {
    /// The sale's page for its current version, rendered now if the cached one is older.
    /// `404` when the sale does not exist (or has no catalog entry yet).
    pub fn get(&self, engine: &Engine, sale: SaleId) -> Result<Arc<SalePage>, ApiError> {
        let version = engine.version(sale).ok_or_else(|| ApiError::not_found("event"))?;
        if let Some(page) = self.pages.read().get(&sale).filter(|p| p.version == version) {
            return Ok(page.clone());
        }
        let (version, view) = engine
            .read_versioned(sale, |s| public_view(sale, s))
            .ok_or_else(|| ApiError::not_found("event"))?;
        let view = view.ok_or_else(|| ApiError::not_found("event"))?;
        let body = serde_json::to_vec(&view).map_err(|_| ApiError::new(Code::Internal, "encoding failed"))?;
        let mut h = FxHasher::default();
        h.write(&body);
        let etag = HeaderValue::try_from(format!("\"{:016x}\"", h.finish()))
            .map_err(|_| ApiError::new(Code::Internal, "encoding the ETag failed"))?;
        let page = Arc::new(SalePage {
            version,
            body: Bytes::from(body),
            etag,
        });
        let mut pages = self.pages.write();
        // Two renderers may race: keep the newer page.
        if pages.get(&sale).is_none_or(|p| p.version < version) {
            pages.insert(sale, page.clone());
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(etag: &'static str) -> SalePage {
        SalePage {
            version: 1,
            body: Bytes::new(),
            etag: HeaderValue::from_static(etag),
        }
    }

    #[test]
    fn if_none_match_forms() {
        let p = page("\"00000000000000ab\"");
        assert!(p.matches("\"00000000000000ab\""));
        assert!(p.matches("W/\"00000000000000ab\""));
        assert!(p.matches("\"x\", \"00000000000000ab\""));
        assert!(p.matches("*"));
        assert!(!p.matches("\"00000000000000ac\""));
        assert!(!p.matches("00000000000000ab"));
        assert!(!p.matches(""));
    }
}
