//! `changewire verify`: does this signature match this body?

use std::process::ExitCode;

use anyhow::Context as _;
use changewire_core::{diagnose, standard};
use clap::Args;

use super::{SchemeArg, event_id_of, read_stdin, unix_now};

/// Arguments of `changewire verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The receiver's shared secret (for ed25519: its `whpk_` public key).
    #[arg(long, env = "CHANGEWIRE_SIGN_SECRET", hide_env_values = true)]
    pub(crate) secret: String,
    /// The receiver URL exactly as registered.
    #[arg(long)]
    pub(crate) url: String,
    /// The signature header's value (`x-ion-signature`, or `webhook-signature`
    /// for the standard scheme).
    #[arg(long)]
    pub(crate) signature: String,
    /// Which signature to check.
    #[arg(long, value_enum, ignore_case = true, default_value_t = SchemeArg::Ion)]
    pub(crate) scheme: SchemeArg,
    /// Standard Webhooks message id (`webhook-id`; default: the body's `event_id`).
    #[arg(long)]
    pub(crate) id: Option<String>,
    /// Standard Webhooks `webhook-timestamp` (required for the standard scheme).
    #[arg(long, allow_hyphen_values = true)]
    pub(crate) timestamp: Option<String>,
    /// Standard Webhooks tolerance between the timestamp and now, in seconds.
    #[arg(long, default_value_t = standard::DEFAULT_TOLERANCE_SECS)]
    pub(crate) tolerance: u64,
    /// Print the exact string that was signed and, on a mismatch, the likely cause.
    #[arg(long)]
    pub(crate) explain: bool,
}

/// Reads the body from stdin; exits 0 when the signature matches, 1 when not.
pub(super) fn run(args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    let body = read_stdin().context("reading the body from stdin")?;
    let verdict = match args.scheme {
        SchemeArg::Ion => verify_ion(args, &body),
        SchemeArg::Standard => verify_standard(args, &body),
        SchemeArg::Ed25519 => verify_ed25519(args, &body),
    };
    Ok(match verdict {
        Ok(()) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            println!("invalid: {reason}");
            ExitCode::from(1)
        }
    })
}

fn verify_ion(args: &VerifyArgs, body: &[u8]) -> Result<(), String> {
    let diagnosis = diagnose::diagnose(&args.secret, &args.url, body, &args.signature)
        .map_err(|err| err.to_string())?;
    if args.explain {
        println!("signed string: {}", diagnosis.signed_string);
        println!("expected signature: {}", diagnosis.expected_signature);
        println!("given signature:    {}", args.signature.trim());
        if let Some(cause) = &diagnosis.cause {
            println!("likely cause: {cause}");
        }
    }
    if diagnosis.matches {
        Ok(())
    } else {
        Err("signature does not match".to_string())
    }
}

/// The message id and timestamp of a Standard Webhooks check.
fn id_and_timestamp<'a>(args: &'a VerifyArgs, body: &[u8]) -> Result<(String, &'a str), String> {
    let id = args
        .id
        .clone()
        .or_else(|| event_id_of(body))
        .ok_or("no message id: pass --id (the webhook-id header)")?;
    let timestamp = args
        .timestamp
        .as_deref()
        .ok_or("no timestamp: pass --timestamp (the webhook-timestamp header)")?;
    Ok((id, timestamp))
}

fn verify_ed25519(args: &VerifyArgs, body: &[u8]) -> Result<(), String> {
    let key = standard::Ed25519PublicKey::parse(&args.secret).map_err(|e| e.to_string())?;
    let (id, timestamp) = id_and_timestamp(args, body)?;
    if args.explain {
        println!(
            "signed string: {id}.{}.{}",
            timestamp.trim(),
            String::from_utf8_lossy(body)
        );
    }
    key.verify(
        &id,
        timestamp,
        &args.signature,
        body,
        unix_now(),
        args.tolerance,
    )
    .map_err(|err| err.to_string())
}

fn verify_standard(args: &VerifyArgs, body: &[u8]) -> Result<(), String> {
    let key = standard::SigningKey::from_secret(&args.secret).map_err(|e| e.to_string())?;
    let (id, timestamp) = id_and_timestamp(args, body)?;
    if args.explain {
        println!(
            "signed string: {id}.{}.{}",
            timestamp.trim(),
            String::from_utf8_lossy(body)
        );
        if let Ok(ts) = standard::parse_timestamp(timestamp) {
            println!("expected signature: {}", key.sign(&id, ts, body));
        }
    }
    standard::verify(
        &key,
        &id,
        timestamp,
        &args.signature,
        body,
        unix_now(),
        args.tolerance,
    )
    .map_err(|err| err.to_string())
}
