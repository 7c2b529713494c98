//! `tailor:plugin/log`: ambient; lines are kept (bounded) with the call's result.

use super::bindings::tailor::plugin::log::{Host, Level};
use super::state::{HostState, LogLevel, LogLine, MAX_LOG_LINE_BYTES, MAX_LOG_LINES};

impl Host for HostState {
    async fn log(&mut self, level: Level, mut message: String) -> wasmtime::Result<()> {
        if self.logs.len() >= MAX_LOG_LINES {
            return Ok(());
        }
        if message.len() > MAX_LOG_LINE_BYTES {
            let mut cut = MAX_LOG_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        let level = match level {
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}
