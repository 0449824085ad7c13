//! What a plugin may import, and what it gets.
//!
//! | import | what the plugin gets |
//! | --- | --- |
//! | `changewire:plugin/log@0.1.x` | the real thing: messages go to `tracing` |
//! | `changewire:plugin/types@0.1.x` | types only |
//! | `wasi:random/insecure-seed@0.2.x` | a fixed seed, so `HashMap` works; no randomness |
//! | `wasi:io/*@0.2.x`, `wasi:cli/*@0.2.x` | stubs that trap when called |
//! | anything else (`wasi:clocks`, `wasi:filesystem`, `wasi:random/random`, `wasi:sockets`, `wasi:http`, …) | refused at upload |
//!
//! Every Rust guest built for `wasm32-wasip2` imports the `wasi:io` and
//! `wasi:cli` interfaces (13 of them) even when it never calls them, so
//! refusing those would refuse every plugin; they are accepted and stubbed,
//! and a call to one (`println!`, `std::env::var`) traps with a message
//! naming it. Anything else is a capability the plugin means to use, so it
//! is refused at upload, with its name, instead of failing deliveries later.

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceType};

use crate::Error;
use crate::host::HostState;

/// The fixed value `wasi:random/insecure-seed` returns. It only seeds hash
/// maps against collision attacks, which a plugin handling one event in
/// isolation does not face.
const INSECURE_SEED: (u64, u64) = (0x6368_616e_6765_7769, 0x7265_2d70_6c75_6769);

/// What the host does with one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Defined in the base linker.
    Provided,
    /// Accepted; every function traps.
    Stubbed,
    /// Refused at upload.
    Refused,
}

fn policy(import: &str) -> Policy {
    let (path, version) = import.split_once('@').unwrap_or((import, ""));
    let v0_1 = version.starts_with("0.1.");
    let v0_2 = version.starts_with("0.2.");
    match path {
        "changewire:plugin/log" | "changewire:plugin/types" if v0_1 => Policy::Provided,
        "wasi:random/insecure-seed" if v0_2 => Policy::Provided,
        _ if v0_2 && (path.starts_with("wasi:io/") || path.starts_with("wasi:cli/")) => {
            Policy::Stubbed
        }
        _ => Policy::Refused,
    }
}

/// The linker every plugin starts from: the provided imports.
pub(crate) fn base_linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    crate::bindings::Bindings::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
        &mut linker,
        |state| state,
    )?;
    linker
        .instance("wasi:random/insecure-seed@0.2.0")?
        .func_wrap("insecure-seed", |_, (): ()| Ok((INSECURE_SEED,)))?;
    Ok(linker)
}

/// Refuse a component whose imports are not all provided or stubbable, and
/// otherwise return a linker for it: the base linker plus trap stubs.
pub(crate) fn linker_for(
    engine: &Engine,
    base: &Linker<HostState>,
    component: &Component,
) -> Result<Linker<HostState>, Error> {
    let ty = component.component_type();
    let refused: Vec<String> = ty
        .imports(engine)
        .filter(|(name, _)| policy(name) == Policy::Refused)
        .map(|(name, _)| name.to_owned())
        .collect();
    if !refused.is_empty() {
        return Err(Error::ForbiddenImport { imports: refused });
    }
    let mut linker = base.clone();
    let stub = |linker: &mut Linker<HostState>| -> wasmtime::Result<()> {
        for (name, item) in ty.imports(engine) {
            if policy(name) != Policy::Stubbed {
                continue;
            }
            // Only interfaces are stubbable (`policy` refuses bare functions).
            let ComponentItem::ComponentInstance(interface) = item.ty else {
                continue;
            };
            let mut instance = linker.instance(name)?;
            for (export, item) in interface.exports(engine) {
                match item.ty {
                    ComponentItem::ComponentFunc(_) => {
                        let called = format!("{name}#{export}");
                        instance.func_new(export, move |_, _, _, _| {
                            Err(wasmtime::Error::new(NotProvided(called.clone())))
                        })?;
                    }
                    // All stubbed resources share one host type, so the
                    // aliases between interfaces (`wasi:io/streams`' use of
                    // `wasi:io/poll.pollable`) line up. No function that
                    // could create one exists.
                    ComponentItem::Resource(_) => {
                        instance.resource(
                            export,
                            ResourceType::host::<StubResource>(),
                            |_, _| Ok(()),
                        )?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    };
    stub(&mut linker).map_err(|e| Error::Instantiate(format!("{e:#}")))?;
    Ok(linker)
}

/// The host type behind every stubbed WASI resource.
struct StubResource;

/// The error a stubbed import traps with.
#[derive(Debug, thiserror::Error)]
#[error(
    "called `{0}`, which changewire does not provide (plugins have no stdio, filesystem, \
     network, clock, randomness or environment; use the SDK's `log` for diagnostics)"
)]
pub(crate) struct NotProvided(pub(crate) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_policy() {
        assert_eq!(policy("changewire:plugin/log@0.1.0"), Policy::Provided);
        assert_eq!(policy("changewire:plugin/log@0.1.7"), Policy::Provided);
        assert_eq!(policy("changewire:plugin/log@0.2.0"), Policy::Refused);
        assert_eq!(policy("wasi:random/insecure-seed@0.2.6"), Policy::Provided);
        assert_eq!(policy("wasi:cli/stdout@0.2.6"), Policy::Stubbed);
        assert_eq!(policy("wasi:io/streams@0.2.0"), Policy::Stubbed);
        assert_eq!(
            policy("wasi:io/streams@0.3.0-rc-2025-09-16"),
            Policy::Refused
        );
        assert_eq!(policy("wasi:clocks/wall-clock@0.2.6"), Policy::Refused);
        assert_eq!(policy("wasi:random/random@0.2.6"), Policy::Refused);
        assert_eq!(policy("wasi:filesystem/preopens@0.2.6"), Policy::Refused);
        assert_eq!(policy("wasi:sockets/tcp@0.2.6"), Policy::Refused);
        assert_eq!(policy("acme:net/http"), Policy::Refused);
    }
}
