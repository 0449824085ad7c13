//! `changewire quickstart`: the product working in one command, with nothing
//! else installed. A SQLite store, a demo app database (SQLite) with a `runs`
//! table, a local receiver that verifies every signature, a receiver and
//! subscriptions registered through the GraphQL API, a few committed changes,
//! and each signed delivery shown as it arrives.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context as _, bail};
use axum::body::Bytes;
use axum::http::HeaderMap;
use changewire_core::{VerifyOptions, verify_request};
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use sqlx::ConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;

use crate::config::Config;
use crate::server::RunningGateway;

/// Arguments of `changewire quickstart`.
#[derive(Debug, Args)]
pub(crate) struct QuickstartArgs {
    /// Keep the demo's files (store, app database) in this directory instead of a temporary one.
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// Keep serving the console (and the API) after the demo, until Ctrl-C.
    /// The default in a terminal.
    #[arg(long, conflicts_with = "exit")]
    pub(crate) serve: bool,
    /// Stop as soon as the demo is done, even in a terminal.
    #[arg(long)]
    pub(crate) exit: bool,
}

/// What the demo receiver saw.
struct Seen {
    secret: OnceLock<String>,
    url: OnceLock<String>,
    lines: Mutex<Vec<String>>,
    count: std::sync::atomic::AtomicUsize,
}

async fn receive(
    axum::extract::State(seen): axum::extract::State<Arc<Seen>>,
    headers: HeaderMap,
    body: Bytes,
) -> &'static str {
    let pairs: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let secret = seen.secret.get().map(String::as_str).unwrap_or("");
    let url = seen.url.get().map(String::as_str).unwrap_or("");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let ion = VerifyOptions {
        require: Some(changewire_core::Scheme::Ion),
        ..Default::default()
    };
    let standard = VerifyOptions {
        require: Some(changewire_core::Scheme::Standard),
        ..Default::default()
    };
    let ion_ok = verify_request(secret, url, &body, &pairs, now, &ion);
    let std_ok = verify_request(secret, url, &body, &pairs, now, &standard);
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mark = |r: &Result<changewire_core::Scheme, changewire_core::Error>| match r {
        Ok(_) => "verified".to_string(),
        Err(e) => format!("NOT VERIFIED ({e})"),
    };
    let line = format!(
        "  ← POST /hook  event_id={} {} {} row {}\n      x-ion-signature: {}  [{}]\n      webhook-signature: {}  [{}]\n      data.old = {}\n      data.new = {}",
        event["event_id"],
        event["resource"].as_str().unwrap_or("?"),
        event["action"].as_str().unwrap_or("?"),
        event["data"]["id"],
        pairs
            .iter()
            .find(|(k, _)| k == "x-ion-signature")
            .map(|(_, v)| v.as_str())
            .unwrap_or("-"),
        mark(&ion_ok),
        pairs
            .iter()
            .find(|(k, _)| k == "webhook-signature")
            .map(|(_, v)| v.as_str())
            .unwrap_or("-"),
        mark(&std_ok),
        event["data"]["old"],
        event["data"]["new"],
    );
    println!("{line}");
    if let Ok(mut lines) = seen.lines.lock() {
        lines.push(line);
    }
    if ion_ok.is_ok() && std_ok.is_ok() {
        seen.count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
    "ok"
}

async fn graphql(base: &str, token: &str, query: &str, variables: Value) -> anyhow::Result<Value> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let body = json!({ "query": query, "variables": variables }).to_string();
    let request = hyper::Request::post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::from(body)))?;
    let response = client.request(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    let value: Value = serde_json::from_slice(&bytes)?;
    if let Some(errors) = value.get("errors") {
        bail!("GraphQL error: {errors}");
    }
    Ok(value["data"].clone())
}

/// Runs the demo.
pub(super) fn run(args: &QuickstartArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(demo(args))
}

async fn demo(args: &QuickstartArgs) -> anyhow::Result<ExitCode> {
    let temp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    println!("changewire quick start — files in {}\n", dir.display());

    // 1. "Your app": a SQLite database with a `runs` table.
    let app_path = dir.join("app.db");
    let mut app = SqliteConnectOptions::from_str(&format!("sqlite://{}", app_path.display()))?
        .create_if_missing(true)
        .connect()
        .await?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, title TEXT NOT NULL, status TEXT NOT NULL, operator TEXT)",
    )
    .execute(&mut app)
    .await?;
    println!(
        "1. demo app database {} with table `runs`",
        app_path.display()
    );

    // 2. A receiver on loopback that verifies every request.
    let seen = Arc::new(Seen {
        secret: OnceLock::new(),
        url: OnceLock::new(),
        lines: Mutex::new(Vec::new()),
        count: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let receiver_addr: SocketAddr = listener.local_addr()?;
    let receiver_url = format!("http://{receiver_addr}/hook");
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(seen.clone());
    let receiver_task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    println!("2. a receiver listening on {receiver_url} (verifies both signature schemes)");

    // 3. The gateway: SQLite store, capturing the app database.
    let token = crate::secrets::generate_api_token();
    let toml = format!(
        "listen = \"127.0.0.1:0\"\nstore = \"sqlite://{store}\"\ncapture = \"sqlite://{app}\"\nallow_http = true\n\
         allow_private_networks = true\nadmin_token = \"{token}\"\n[log]\nlevel = \"warn\"\n[resources]\nRUNS = \"runs\"\n\
         [delivery]\npoll_interval_ms = 20\n",
        store = dir.join("changewire.db").display(),
        app = app_path.display(),
        token = token.expose()
    );
    let config = Arc::new(Config::from_toml(&toml)?);
    crate::telemetry::init_logging(&config.log);
    let gw_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = RunningGateway::start_on(config, gw_listener)
        .await
        .context("starting the gateway")?;
    let base = format!("http://{}", gateway.addr);
    println!(
        "3. changewire serving the API on {base}/graphql (store: SQLite, capture: the app database)"
    );

    // 4. Register the receiver and subscribe it, through the API, as an ION client would.
    let created = graphql(
        &base,
        token.expose(),
        "mutation CreateWebhookReceiver($input: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $input) { webhookReceiver { id sharedSecret } } }",
        json!({"input": {"name": "quick start receiver", "webhookUri": receiver_url, "signatureSchemes": ["ION", "STANDARD"]}}),
    )
    .await?;
    let receiver = &created["createWebhookReceiver"]["webhookReceiver"];
    let secret = receiver["sharedSecret"]
        .as_str()
        .context("no secret")?
        .to_string();
    let receiver_id = receiver["id"].as_str().context("no id")?.to_string();
    let _ = seen.secret.set(secret.clone());
    let _ = seen.url.set(receiver_url.clone());
    for action in ["CREATE", "UPDATE", "DELETE"] {
        graphql(
            &base,
            token.expose(),
            "mutation($r: ID!, $a: WebhookSubscriptionActions!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: $a }) { webhookSubscription { id } } }",
            json!({"r": receiver_id, "a": action}),
        )
        .await?;
    }
    println!(
        "4. registered receiver {receiver_id} (secret {}…) subscribed to RUNS create/update/delete\n",
        &secret[..12]
    );

    // 5. The app commits changes; changewire captures and delivers them.
    println!("5. the app commits four changes:");
    let steps = [
        (
            "INSERT INTO runs (id, title, status) VALUES (1, 'Build 42', 'queued')",
            "insert run 1",
        ),
        (
            "UPDATE runs SET status = 'in_progress', operator = 'ada' WHERE id = 1",
            "start it (operator goes from null to a value)",
        ),
        (
            "UPDATE runs SET status = 'complete' WHERE id = 1",
            "complete it",
        ),
        ("DELETE FROM runs WHERE id = 1", "delete it"),
    ];
    for (sql, what) in steps {
        println!("  → {what}: {sql}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut app)
            .await?;
        let expected = seen.count.load(std::sync::atomic::Ordering::SeqCst) + 1;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while seen.count.load(std::sync::atomic::Ordering::SeqCst) < expected
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    // 6. The audit trail, through the API (the receiver may have answered a
    // moment before the gateway recorded the answer: wait for the record).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let events = loop {
        let events = graphql(
            &base,
            token.expose(),
            "query($r: Int) { webhookEvents(filters: { receiverId: $r }) { id status action attemptCount responseStatus } }",
            json!({"r": receiver_id.parse::<i64>().unwrap_or(0)}),
        )
        .await?;
        let pending = events["webhookEvents"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["status"] == "pending");
        if !pending || tokio::time::Instant::now() >= deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("\n6. webhookEvents (the audit trail):");
    for e in events["webhookEvents"].as_array().into_iter().flatten() {
        println!(
            "  event {} {} → {} (HTTP {}, {} attempt)",
            e["id"], e["action"], e["status"], e["responseStatus"], e["attemptCount"]
        );
    }
    let delivered = seen.count.load(std::sync::atomic::Ordering::SeqCst);
    let ok = delivered == steps.len();
    if ok {
        println!(
            "\n{delivered} changes committed, {delivered} signed deliveries received and verified."
        );
    } else {
        eprintln!(
            "\nexpected {} verified deliveries, got {delivered}",
            steps.len()
        );
    }

    // 7. The console, opened on these deliveries by a single-use link.
    let link = graphql(
        &base,
        token.expose(),
        "mutation { createConsoleSession(input: {}) { url expiresAt } }",
        json!({}),
    )
    .await?;
    let path = link["createConsoleSession"]["url"]
        .as_str()
        .context("no console link")?;
    let keep_serving = args.serve || (!args.exit && std::io::stdout().is_terminal());
    println!("\n7. the console, signed in, on these deliveries (the link works once):");
    println!("  {base}{path}");
    if keep_serving {
        println!("\nServing the console and the API until Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
    } else {
        println!("  (the gateway stops now: run `changewire quickstart --serve` to keep it open)");
    }
    gateway.shutdown().await;
    receiver_task.abort();
    if ok {
        println!(
            "Next: `changewire serve --help`, the API at /graphql, the console at /console, and the SDKs in docs/sdks.md."
        );
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
