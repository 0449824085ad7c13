//! `changewire sign`: what a sender would put in the signature header.

use std::process::ExitCode;

use anyhow::Context as _;
use changewire_core::{ion, standard};
use clap::Args;

use super::{SchemeArg, event_id_of, read_stdin, unix_now};

/// Arguments of `changewire sign`.
#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// The receiver's shared secret (for ed25519: a `whsk_` signing key).
    #[arg(long, env = "CHANGEWIRE_SIGN_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// The receiver URL exactly as registered (part of the ION signature).
    #[arg(long)]
    pub(crate) url: String,
    /// Which signature to print.
    #[arg(long, value_enum, ignore_case = true, default_value_t = SchemeArg::Ion)]
    pub(crate) scheme: SchemeArg,
    /// Standard Webhooks message id (default: the body's `event_id`).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Standard Webhooks timestamp in Unix seconds (default: now).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) timestamp: Option<i64>,
}

/// The Standard Webhooks message id (given, or the body's `event_id`) and
/// timestamp (given, or now).
fn id_and_timestamp(args: &SignArgs, body: &[u8]) -> anyhow::Result<(String, i64)> {
    let id = match &args.id {
        Some(id) => id.clone(),
        None => event_id_of(body).context(
            "the body has no `event_id`; pass --id for the Standard Webhooks message id",
        )?,
    };
    Ok((id, args.timestamp.unwrap_or_else(unix_now)))
}

/// Reads the body from stdin and prints its signature.
pub(super) fn run(args: &SignArgs) -> anyhow::Result<ExitCode> {
    let body = read_stdin().context("reading the body from stdin")?;
    match args.scheme {
        SchemeArg::Ion => {
            let signature = ion::sign_body(&args.secret, &args.url, &body)?;
            println!("{signature}");
        }
        SchemeArg::Standard => {
            let key = standard::SigningKey::from_secret(&args.secret)?;
            let (id, timestamp) = id_and_timestamp(args, &body)?;
            println!("webhook-id: {id}");
            println!("webhook-timestamp: {timestamp}");
            println!("webhook-signature: {}", key.sign(&id, timestamp, &body));
        }
        SchemeArg::Ed25519 => {
            let key = standard::Ed25519SigningKey::parse(&args.secret)?;
            let (id, timestamp) = id_and_timestamp(args, &body)?;
            println!("webhook-id: {id}");
            println!("webhook-timestamp: {timestamp}");
            println!("webhook-signature: {}", key.sign(&id, timestamp, &body));
            println!("public key: {}", key.public_key());
        }
    }
    Ok(ExitCode::SUCCESS)
}
