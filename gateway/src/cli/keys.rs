//! `changewire keys`: API keys (bearer tokens) for the management API.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};

use crate::config::{Config, FlagOverrides};
use crate::secrets::{generate_api_token, hash_token};
use crate::store::Store;
use crate::timefmt::format_ms;

/// Arguments of `changewire keys`.
#[derive(Debug, Args)]
pub(crate) struct KeysArgs {
    /// A TOML configuration file (for the store).
    #[arg(long, value_name = "FILE", global = true)]
    pub(crate) config: Option<std::path::PathBuf>,
    /// The store [env: CHANGEWIRE_STORE] [default: sqlite://changewire.db].
    #[arg(long, value_name = "URL", global = true)]
    pub(crate) store: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub(crate) action: KeysAction,
}

/// Roles of a key.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum RoleArg {
    Admin,
    /// Read only: queries succeed, mutations are FORBIDDEN.
    Viewer,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum KeysAction {
    /// Create a key and print its token (shown once; only its hash is stored).
    Create {
        /// A name for the key (shown as `createdBy`).
        #[arg(long)]
        name: String,
        /// Its role.
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
    },
    /// List keys (never their tokens).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key's id (see `keys list`).
        id: i64,
    },
}

/// Runs a `keys` subcommand.
pub(super) fn run(args: &KeysArgs) -> anyhow::Result<ExitCode> {
    let flags = FlagOverrides {
        store: args.store.clone(),
        ..Default::default()
    };
    let config = Config::load(args.config.as_deref(), &flags).context("configuration")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::connect(&config.store).await.map_err(|err| {
            let advice =
                super::advice::database("the store", &config.store, super::advice::STORE_SETTING);
            super::advice::Advised::wrap(err, "opening the store", Some(advice))
        })?;
        let code = match &args.action {
            KeysAction::Create { name, role } => {
                let name = name.trim();
                anyhow::ensure!(
                    !name.is_empty() && name.len() <= 200,
                    "--name must be 1–200 characters"
                );
                let role = match role {
                    RoleArg::Admin => "admin",
                    RoleArg::Viewer => "viewer",
                };
                let token = generate_api_token();
                let prefix: String = token.expose().chars().take(8).collect();
                let key = store
                    .insert_api_key(name, role, &hash_token(token.expose()), &prefix)
                    .await?;
                eprintln!(
                    "created key {} `{}` ({role}); the token is shown once:",
                    key.id, key.name
                );
                println!("{}", token.expose());
                ExitCode::SUCCESS
            }
            KeysAction::List => {
                println!(
                    "{:<6} {:<24} {:<8} {:<10} {:<26} STATUS",
                    "ID", "NAME", "ROLE", "TOKEN", "CREATED"
                );
                for key in store.api_keys().await? {
                    let status = match key.revoked_at {
                        Some(at) => format!("revoked {}", format_ms(at)),
                        None => "active".to_string(),
                    };
                    println!(
                        "{:<6} {:<24} {:<8} {:<10} {:<26} {}",
                        key.id,
                        key.name,
                        key.role,
                        format!("{}…", key.token_prefix),
                        format_ms(key.created_at),
                        status
                    );
                }
                ExitCode::SUCCESS
            }
            KeysAction::Revoke { id } => {
                if store.revoke_api_key(*id).await? {
                    println!("revoked key {id}");
                    ExitCode::SUCCESS
                } else {
                    eprintln!("no active key with id {id}");
                    ExitCode::from(1)
                }
            }
        };
        store.close().await;
        Ok(code)
    })
}
