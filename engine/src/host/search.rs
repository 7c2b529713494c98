//! `tailor:plugin/search`: the current user's history, for stages granted `search`. The scope
//! (tenant and user) and the stage's `where` filter come from the call, never from the plugin.

use std::sync::Arc;

use super::bindings::tailor::plugin::search::{Hit, Host, Method, Query};
use super::bindings::types::{HostError, Item};
use super::convert::item_to_wit;
use super::services::{Scope, Search, SearchMethod, SearchQuery};
use super::state::HostState;
use tailor_dsl::descriptor::Capability;

/// The most items one call may ask for.
pub const MAX_K: u32 = 1_000;

impl HostState {
    /// The call's user and the history service, or why there is none.
    fn search_ready(&self) -> Result<(Scope, Arc<dyn Search>), HostError> {
        let scope = self.scope()?;
        let service = self
            .services
            .search
            .clone()
            .ok_or_else(|| HostError::Unavailable("no history store is configured".into()))?;
        Ok((scope, service))
    }
}

impl Host for HostState {
    async fn search(&mut self, query: Query) -> wasmtime::Result<Result<Vec<Hit>, HostError>> {
        if let Err(e) = self.require(Capability::Search) {
            return Ok(Err(e));
        }
        if query.k == 0 || query.k > MAX_K {
            return Ok(Err(HostError::InvalidRequest(format!("k must be 1..={MAX_K}"))));
        }
        let (scope, service) = match self.search_ready() {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let method = match query.method {
            Method::Bm25 => SearchMethod::Bm25,
            Method::Dense => SearchMethod::Dense,
            Method::Hybrid => SearchMethod::Hybrid,
        };
        let request = SearchQuery { text: query.text, method, k: query.k as usize };
        let hits = service.search(&scope, request, self.filter.as_ref()).await;
        Ok(hits
            .map(|hits| hits.into_iter().map(|h| Hit { item: item_to_wit(&h.item), score: h.score }).collect())
            .map_err(HostError::from))
    }

    async fn recent(&mut self, limit: u32) -> wasmtime::Result<Result<Vec<Item>, HostError>> {
        if let Err(e) = self.require(Capability::Search) {
            return Ok(Err(e));
        }
        if limit > 10 * MAX_K {
            return Ok(Err(HostError::InvalidRequest(format!("limit must be at most {}", 10 * MAX_K))));
        }
        let (scope, service) = match self.search_ready() {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let items = service.recent(&scope, limit as usize, self.filter.as_ref()).await;
        Ok(items.map(|items| items.iter().map(|i| item_to_wit(Arc::as_ref(i))).collect()).map_err(HostError::from))
    }
}
