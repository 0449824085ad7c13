//! Readiness of the parts `/readyz` reports on.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The state of one component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct ComponentState {
    pub(crate) ready: bool,
    /// The last error, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
    /// Whether this component failing makes the whole gateway not ready
    /// (`/readyz` answers 503). A degraded component (one receiver's
    /// plugin does not load) is reported but keeps the gateway in service,
    /// so the API stays reachable to fix it.
    #[serde(skip_serializing_if = "is_true")]
    pub(crate) blocks_readiness: bool,
}

fn is_true(b: &bool) -> bool {
    *b
}

impl ComponentState {
    /// A working component.
    pub(crate) fn working() -> Self {
        ComponentState {
            ready: true,
            error: None,
            blocks_readiness: true,
        }
    }

    /// Whether this component keeps the gateway from being ready.
    pub(crate) fn blocks(&self) -> bool {
        !self.ready && self.blocks_readiness
    }
}

/// Components report here; `/readyz` reads it.
#[derive(Debug, Default)]
pub(crate) struct Health {
    components: Mutex<BTreeMap<String, ComponentState>>,
}

impl Health {
    /// Marks a component ready.
    pub(crate) fn ready(&self, name: &str) {
        self.set(name, ComponentState::working());
    }

    /// Marks a component failing, with the reason.
    pub(crate) fn failing(&self, name: &str, error: impl Into<String>) {
        self.set(
            name,
            ComponentState {
                ready: false,
                error: Some(error.into()),
                blocks_readiness: true,
            },
        );
    }

    /// Marks a component degraded: failing, reported, but not enough to
    /// take the gateway out of service.
    pub(crate) fn degraded(&self, name: &str, error: impl Into<String>) {
        self.set(
            name,
            ComponentState {
                ready: false,
                error: Some(error.into()),
                blocks_readiness: false,
            },
        );
    }

    fn set(&self, name: &str, state: ComponentState) {
        if let Ok(mut map) = self.components.lock() {
            map.insert(name.to_string(), state);
        }
    }

    /// Every component's state.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.components
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}
