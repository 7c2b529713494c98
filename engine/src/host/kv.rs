//! `tailor:plugin/kv`: a cache private to the plugin and the current user, for stages granted
//! `kv`.

use super::bindings::tailor::plugin::kv::Host;
use super::bindings::types::HostError;
use super::state::HostState;
use tailor_dsl::descriptor::Capability;

pub const MAX_KEY_BYTES: usize = 256;
pub const MAX_VALUE_BYTES: usize = 1 << 20;

impl HostState {
    fn kv_ready(
        &mut self,
        key: &str,
    ) -> Result<(super::services::Scope, std::sync::Arc<dyn super::services::Kv>), HostError> {
        self.require(Capability::Kv)?;
        if key.is_empty() || key.len() > MAX_KEY_BYTES {
            return Err(HostError::InvalidRequest(format!("keys are 1..={MAX_KEY_BYTES} bytes")));
        }
        let scope = self.scope()?;
        let service =
            self.services.kv.clone().ok_or_else(|| HostError::Unavailable("no cache is configured".into()))?;
        Ok((scope, service))
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<Vec<u8>>, HostError>> {
        let (scope, service) = match self.kv_ready(&key) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(service.get(&scope, &key).await.map_err(HostError::from))
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_seconds: Option<u64>,
    ) -> wasmtime::Result<Result<(), HostError>> {
        let (scope, service) = match self.kv_ready(&key) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        if value.len() > MAX_VALUE_BYTES {
            return Ok(Err(HostError::Limit(format!("values are at most {MAX_VALUE_BYTES} bytes"))));
        }
        Ok(service.set(&scope, &key, value, ttl_seconds).await.map_err(HostError::from))
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<Result<(), HostError>> {
        let (scope, service) = match self.kv_ready(&key) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        Ok(service.delete(&scope, &key).await.map_err(HostError::from))
    }
}
