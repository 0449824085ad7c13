//! Allocates 1 MiB at a time and never frees: the memory cap must stop it.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct AllocUnbounded;

impl Plugin for AllocUnbounded {
    fn transform(_event: Event) -> Result<Outcome> {
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
        }
    }
}

export_plugin!(AllocUnbounded);
