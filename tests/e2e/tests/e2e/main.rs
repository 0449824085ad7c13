//! End-to-end scenarios, one module each.

#![allow(clippy::unwrap_used)] // in tests a failed unwrap is a failed test, with its location

mod kill9_no_loss;
mod pg_restart;
mod python_reference_receiver;
mod quickstart;
mod sdk_agreement;
mod sigterm_graceful;
mod switch_crash;
