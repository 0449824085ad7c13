//! Diagnostics: messages to the gateway's log, and the panic hook.

use std::sync::Once;

#[cfg(target_family = "wasm")]
use crate::bindings::changewire::plugin::log as wit;

/// How important a log message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging a plugin.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something the plugin could not handle.
    Error,
}

/// Send one message to the gateway's log, tagged with this plugin.
///
/// The gateway keeps a few KiB of messages per call and drops the rest; the
/// last `Error` message before a trap is recorded with the failed delivery.
/// Outside WebAssembly (in `cargo test`) the message goes to stderr.
pub fn log(level: Level, message: &str) {
    #[cfg(target_family = "wasm")]
    {
        let level = match level {
            Level::Debug => wit::Level::Debug,
            Level::Info => wit::Level::Info,
            Level::Warn => wit::Level::Warn,
            Level::Error => wit::Level::Error,
        };
        wit::log(level, message);
    }
    // The import exists only inside a component.
    #[cfg(not(target_family = "wasm"))]
    eprintln!("[{level:?}] {message}");
}

/// `log(Level::Debug, &format!(...))`.
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &::std::format!($($arg)*)) };
}

/// `log(Level::Info, &format!(...))`.
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &::std::format!($($arg)*)) };
}

/// `log(Level::Warn, &format!(...))`.
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &::std::format!($($arg)*)) };
}

/// `log(Level::Error, &format!(...))`.
#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &::std::format!($($arg)*)) };
}

/// Route panics to the gateway instead of stderr (which a plugin does not
/// have): the message is logged at `Error`, and the host attaches it to the
/// trap that follows. Installed on the first call; a no-op natively so that
/// `cargo test` keeps its usual panic output.
pub(crate) fn install_panic_hook() {
    static HOOK: Once = Once::new();
    if cfg!(target_family = "wasm") {
        HOOK.call_once(|| {
            std::panic::set_hook(Box::new(|info| {
                let payload = info
                    .payload()
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("Box<dyn Any>");
                let message = match info.location() {
                    Some(at) => format!("panicked at {at}: {payload}"),
                    None => format!("panicked: {payload}"),
                };
                log(Level::Error, &message);
            }));
        });
    }
}
