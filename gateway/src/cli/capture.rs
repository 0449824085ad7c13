//! `changewire capture`: install, check or remove capture (triggers, or a
//! replication slot and publication).

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use super::serve::ServeArgs;
use crate::config::Config;

/// Arguments of `changewire capture`.
#[derive(Debug, Args)]
pub(crate) struct CaptureArgs {
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: CaptureAction,
}

/// `capture` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CaptureAction {
    /// Check the mapped tables and install capture (what `serve` does at
    /// start-up), then exit: the log, trigger function and triggers, or with
    /// `--capture-mode logical` the publication and replication slot.
    Install {
        /// Where and what to capture (same flags as `serve`).
        #[command(flatten)]
        serve: ServeArgs,
    },
    /// Drop what capture installed in the captured database: the triggers and
    /// trigger function, and the replication slot and publication (an
    /// abandoned slot keeps WAL until the server's disk is full).
    Uninstall {
        /// Also drop the change log (changes not yet imported are lost).
        #[arg(long)]
        purge: bool,
        /// Where and what to capture (same flags as `serve`).
        #[command(flatten)]
        serve: ServeArgs,
    },
}

/// Runs a `capture` subcommand.
pub(super) fn run(args: &CaptureArgs) -> anyhow::Result<ExitCode> {
    let serve = match &args.action {
        CaptureAction::Install { serve } | CaptureAction::Uninstall { serve, .. } => serve,
    };
    let config =
        Config::load(serve.config.as_deref(), &serve.overrides()).context("configuration")?;
    anyhow::ensure!(
        config.capture.is_some(),
        "no capture database: pass --capture URL (and --resource NAME=TABLE)"
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let advised = |doing: &'static str| {
        let config = &config;
        move |err: crate::capture::Error| {
            let advice = super::advice::for_capture(&err, config);
            super::advice::Advised::wrap(err, doing, advice)
        }
    };
    runtime.block_on(async {
        match &args.action {
            CaptureAction::Install { .. } => {
                match config.capture.as_ref() {
                    Some(crate::config::StoreUrl::Postgres(url)) => {
                        match config.capture_options.mode {
                            crate::config::CaptureMode::Triggers => {
                                crate::capture::postgres::PgCapture::setup(url, &config)
                                    .await
                                    .map_err(advised("installing capture"))?;
                            }
                            crate::config::CaptureMode::Logical => {
                                crate::capture::logical::LogicalCapture::setup(url, &config)
                                    .await
                                    .map_err(advised("installing capture"))?;
                            }
                        }
                    }
                    Some(crate::config::StoreUrl::Sqlite(url)) => {
                        crate::capture::sqlite::SqliteCapture::setup(url, &config)
                            .await
                            .map_err(advised("installing capture"))?;
                    }
                    None => {}
                }
                println!(
                    "capture installed for {} table(s)",
                    config.resources.captured().count()
                );
            }
            CaptureAction::Uninstall { purge, .. } => {
                crate::capture::uninstall(&config, *purge)
                    .await
                    .map_err(advised("removing capture"))?;
                println!(
                    "capture triggers, replication slot and publication removed{}",
                    if *purge {
                        "; the change log and the capture's identity dropped"
                    } else {
                        ""
                    }
                );
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
