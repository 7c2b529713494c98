//! The data of one plugin call's `Store`: its sandbox (WASI with nothing granted), its grants
//! and scope, its limits, and what it did that the caller must know (an ungranted call, a
//! memory limit hit, captured stderr and logs).

use std::collections::{BTreeSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tailor_dsl::descriptor::Capability;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::types::HostError;
use super::services::{ItemFilter, Scope, ServiceError, Services};

/// How much of a plugin's stderr is kept (enough for a panic message and its location).
pub const STDERR_CAPTURE_BYTES: usize = 16 * 1024;
/// Log lines kept per call, and the longest line.
pub const MAX_LOG_LINES: usize = 100;
pub const MAX_LOG_LINE_BYTES: usize = 4 * 1024;

/// A line a plugin logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) stderr: CapturedOutput,
    pub(crate) grants: BTreeSet<Capability>,
    pub(crate) scope: Option<Scope>,
    pub(crate) filter: Option<ItemFilter>,
    pub(crate) services: Services,
    memory_limit: usize,
    /// A memory or table growth was refused.
    pub(crate) limit_hit: bool,
    /// The first capability the plugin called without a grant.
    pub(crate) violation: Option<Capability>,
    pub(crate) logs: Vec<LogLine>,
}

impl HostState {
    pub(crate) fn new(
        grants: BTreeSet<Capability>,
        scope: Option<Scope>,
        filter: Option<ItemFilter>,
        services: Services,
        memory_limit: usize,
    ) -> Self {
        let stderr = CapturedOutput::default();
        // Deny by default: no preopened directories, no environment, no arguments, no
        // network; stdout is discarded, stderr captured for panic messages.
        let wasi = WasiCtx::builder()
            .stdout(tokio::io::empty())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }))
            .build();
        HostState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            grants,
            scope,
            filter,
            services,
            memory_limit,
            limit_hit: false,
            violation: None,
            logs: Vec::new(),
        }
    }

    /// Checks a grant; an ungranted call is refused and remembered, so that the stage fails
    /// whatever the plugin does next.
    pub(crate) fn require(&mut self, capability: Capability) -> Result<(), HostError> {
        if self.grants.contains(&capability) {
            Ok(())
        } else {
            self.violation.get_or_insert(capability);
            Err(HostError::NotGranted(super::convert::capability_to_wit(capability)))
        }
    }

    /// The call's scope, for services that are per user.
    pub(crate) fn scope(&self) -> Result<Scope, HostError> {
        self.scope.clone().ok_or_else(|| HostError::Unavailable("no user for this call".into()))
    }

    /// Text the plugin wrote to stderr (a panic message, usually).
    pub(crate) fn stderr_text(&self) -> String {
        self.stderr.text()
    }
}

/// A guest's stderr: every write succeeds, the last [`STDERR_CAPTURE_BYTES`] are kept (a panic
/// message comes last), the rest is dropped.
#[derive(Clone, Default)]
pub(crate) struct CapturedOutput {
    tail: Arc<Mutex<VecDeque<u8>>>,
}

impl CapturedOutput {
    fn text(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let (a, b) = tail.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).trim().to_string()
    }
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let keep = &buf[buf.len().saturating_sub(STDERR_CAPTURE_BYTES)..];
        let len = tail.len();
        let overflow = (len + keep.len()).saturating_sub(STDERR_CAPTURE_BYTES).min(len);
        tail.drain(..overflow);
        tail.extend(keep);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl wasmtime_wasi::cli::IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl wasmtime_wasi::cli::StdoutStream for CapturedOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl From<ServiceError> for HostError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Unavailable(m) => HostError::Unavailable(m),
            ServiceError::InvalidRequest(m) => HostError::InvalidRequest(m),
            ServiceError::Limit(m) => HostError::Limit(m),
            ServiceError::Refused(m) => HostError::InvalidRequest(format!("refused: {m}")),
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_limit {
            self.limit_hit = true;
            return Err(wasmtime::format_err!("memory limit of {} bytes reached", self.memory_limit));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        const MAX_TABLE_ELEMENTS: usize = 100_000;
        if desired > MAX_TABLE_ELEMENTS {
            self.limit_hit = true;
            return Err(wasmtime::format_err!("table limit of {MAX_TABLE_ELEMENTS} elements reached"));
        }
        Ok(true)
    }
}

/// The shared types interface has no functions of its own.
impl super::bindings::types::Host for HostState {}
