//! Host bindings generated from `plugins/wit/plugin.wit`, kept private; the
//! rest of the module converts to and from its own public types.

/// The output of `bindgen!`. Its items are `pub` because the macro makes
/// them so; none is reachable from outside this module tree.
#[allow(missing_docs, unreachable_pub)] // generated code
mod generated {
    wasmtime::component::bindgen!({
        path: "../plugins/wit",
        world: "plugin",
        // `transform` is entered asynchronously so a long call yields to the
        // executor at every epoch tick instead of holding its thread.
        exports: { default: async },
    });
}

pub(crate) use generated::changewire::plugin::log::{Host as LogHost, Level};
#[cfg(test)]
pub(crate) use generated::changewire::plugin::types::{Deliver, Header};
pub(crate) use generated::changewire::plugin::types::{Event, Host as TypesHost, Outcome};
pub(crate) use generated::{Plugin as Bindings, PluginPre as BindingsPre};

/// The name the gateway looks the entry point up by.
pub(crate) const TRANSFORMER_EXPORT: &str = "changewire:plugin/transformer@0.1.0";
