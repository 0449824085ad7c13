//! Recurses (practically) without bound: the host's stack limit must trap it.

use changewire_plugin_sdk::{Event, Outcome, Plugin, Result, export_plugin};

struct StackOverflow;

/// Not a tail call: each frame keeps `depth` live across the recursion.
fn descend(depth: u64, bottom: u64) -> u64 {
    if depth == bottom {
        return depth;
    }
    std::hint::black_box(descend(std::hint::black_box(depth + 1), bottom)) + depth
}

impl Plugin for StackOverflow {
    fn transform(_event: Event) -> Result<Outcome> {
        Err(format!("reached the bottom: {}", descend(0, u64::MAX)).into())
    }
}

export_plugin!(StackOverflow);
