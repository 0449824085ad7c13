//! Readiness of the parts `/readyz` reports on.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The state of one component.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ComponentState {
    /// Working.
    pub ready: bool,
    /// The last error, when not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Components report here; `/readyz` reads it.
#[derive(Debug, Default)]
pub struct Health {
    components: Mutex<BTreeMap<String, ComponentState>>,
}

impl Health {
    /// Marks a component ready.
    pub fn ready(&self, name: &str) {
        self.set(
            name,
            ComponentState {
                ready: true,
                error: None,
            },
        );
    }

    /// Marks a component failing, with the reason.
    pub fn failing(&self, name: &str, error: impl Into<String>) {
        self.set(
            name,
            ComponentState {
                ready: false,
                error: Some(error.into()),
            },
        );
    }

    fn set(&self, name: &str, state: ComponentState) {
        if let Ok(mut map) = self.components.lock() {
            map.insert(name.to_string(), state);
        }
    }

    /// Every component's state.
    pub fn snapshot(&self) -> BTreeMap<String, ComponentState> {
        self.components
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default()
    }
}
