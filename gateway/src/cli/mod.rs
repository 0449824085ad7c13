//! Command line: one file per subcommand. `anyhow` lives here and in `main`
//! only; library code returns typed errors.

mod advice;
mod capture;
mod keys;
mod quickstart;
mod serve;
mod sign;
mod verify;

pub(crate) use serve::ServeArgs;

use std::io::Read;
use std::process::ExitCode;

use changewire_core::Scheme;
use clap::{Parser, Subcommand, ValueEnum};

/// The version and the git commit the binary was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("BUILD_GIT_COMMIT"),
    ")"
);

/// changewire — committed database changes become signed webhooks.
#[derive(Debug, Parser)]
#[command(name = "changewire", version = VERSION, about, long_about = None)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the gateway: API, web console, capture and delivery.
    Serve(serve::ServeArgs),
    /// See it work: a demo app database, a receiver, and signed deliveries
    /// verified as they arrive — on the embedded SQLite default — then a
    /// link to the web console opened on them.
    Quickstart(quickstart::QuickstartArgs),
    /// Install or remove capture (triggers, or a replication slot) without
    /// running the gateway.
    Capture(capture::CaptureArgs),
    /// Manage API keys (bearer tokens for the management API).
    Keys(keys::KeysArgs),
    /// Print the commented default configuration (every key of `--config`).
    Config,
    /// Print the GraphQL schema (SDL) for the configured resources.
    Schema(serve::ServeArgs),
    /// Print the signature of a webhook body read from stdin.
    Sign(sign::SignArgs),
    /// Check a webhook body read from stdin against a signature; exit 0 if it
    /// matches, 1 if not.
    Verify(verify::VerifyArgs),
}

/// Which signature to make or check: [`Scheme`] as a clap value, so `--help`
/// lists the names with these descriptions (a test pins them to
/// [`Scheme::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SchemeArg {
    /// `x-ion-signature`: HMAC-SHA1 over the receiver URL and `data`, as ION computes it.
    Ion,
    /// Standard Webhooks `webhook-signature`: HMAC-SHA256 over `id.timestamp.body`.
    Standard,
    /// Standard Webhooks `webhook-signature` `v1a`: Ed25519 over `id.timestamp.body`
    /// (sign with a `whsk_` key, verify with the receiver's `whpk_` public key).
    Ed25519,
}

impl From<SchemeArg> for Scheme {
    fn from(arg: SchemeArg) -> Self {
        match arg {
            SchemeArg::Ion => Scheme::Ion,
            SchemeArg::Standard => Scheme::Standard,
            SchemeArg::Ed25519 => Scheme::Ed25519,
        }
    }
}

/// Parses the command line and runs it.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Serve(args) => serve::run(&args),
        Command::Quickstart(args) => quickstart::run(&args),
        Command::Capture(args) => capture::run(&args),
        Command::Keys(args) => keys::run(&args),
        Command::Config => {
            print!("{}", crate::config::DEFAULT_TOML);
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema(args) => print_schema(&args),
        Command::Sign(args) => sign::run(&args),
        Command::Verify(args) => verify::run(&args),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("{}", error_text(&err));
            ExitCode::from(2)
        }
    }
}

/// What the CLI prints for an error: each distinct cause once, then the
/// advice (what was tried, which setting to check) on a line of its own.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = format!("changewire: {}", crate::report::Report(err.as_ref()));
    if let Some(advice) = err
        .downcast_ref::<advice::Advised>()
        .and_then(|a| a.advice.as_deref())
    {
        text.push_str("\nchangewire: ");
        text.push_str(advice);
    }
    text
}

/// Reads the whole of stdin (the webhook body, byte for byte).
fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin().read_to_end(&mut body)?;
    Ok(body)
}

/// The current Unix time in seconds.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The `event_id` of a body, as text, for use as a Standard Webhooks message id.
fn event_id_of(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    match value.get("event_id")? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Prints the SDL for the configuration the flags describe.
fn print_schema(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let config = crate::config::Config::load(args.config.as_deref(), &args.overrides())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let sdl = runtime.block_on(async { crate::api::schema::sdl_for_config(config) });
    print!("{sdl}");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_args_are_named_as_core_names_the_schemes() {
        for arg in SchemeArg::value_variants() {
            let value = arg.to_possible_value().unwrap();
            assert_eq!(value.get_name(), Scheme::from(*arg).as_str());
        }
        let converted: Vec<Scheme> = SchemeArg::value_variants()
            .iter()
            .map(|arg| Scheme::from(*arg))
            .collect();
        assert_eq!(converted, Scheme::ALL);
    }

    #[test]
    fn scheme_flags_default_to_ion_and_ignore_case() {
        let scheme_of = |args: &[&str]| {
            let mut line = vec!["changewire", "sign", "--secret", "s", "--url", "u"];
            line.extend_from_slice(args);
            match Cli::try_parse_from(line).unwrap().command {
                Command::Sign(sign) => sign.scheme,
                other => panic!("parsed as {other:?}"),
            }
        };
        assert_eq!(scheme_of(&[]), SchemeArg::Ion);
        assert_eq!(scheme_of(&["--scheme", "standard"]), SchemeArg::Standard);
        assert_eq!(scheme_of(&["--scheme", "STANDARD"]), SchemeArg::Standard);
        let err = Cli::try_parse_from([
            "changewire",
            "verify",
            "--secret",
            "s",
            "--url",
            "u",
            "--signature",
            "x",
            "--scheme",
            "hmac",
        ])
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("[possible values: ion, standard, ed25519]"),
            "{err}"
        );
    }
}
