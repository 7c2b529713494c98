//! `tailor:plugin/now`: ambient; the host's clock (a test may set it).

use super::bindings::tailor::plugin::now::Host;
use super::state::HostState;

impl Host for HostState {
    async fn now(&mut self) -> wasmtime::Result<f64> {
        Ok(self.services.clock.now())
    }
}
