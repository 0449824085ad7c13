//! Never returns: the gateway's time limit must interrupt it.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct LoopForever;

impl Plugin for LoopForever {
    fn transform(event: Event) -> Result<Outcome> {
        let mut n = 0u64;
        loop {
            n = std::hint::black_box(n.wrapping_add(event.body.len() as u64));
        }
    }
}

export_plugin!(LoopForever);
