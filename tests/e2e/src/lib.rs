//! Helpers for end-to-end tests: the `changewire` binary as a child process.
//!
//! The binary is `$CHANGEWIRE_BIN`, or `changewire` next to the test
//! executable's `deps/` folder (build it first: `cargo build -p
//! changewire-gateway`; `make e2e` does).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use changewire_test_support::gateway::ADMIN_TOKEN;
use changewire_test_support::http;
use serde_json::{Value, json};

/// The binary under test.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("CHANGEWIRE_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let bin = dir.join("changewire");
    assert!(
        bin.exists(),
        "{} not found: run `cargo build -p changewire-gateway` first (or set CHANGEWIRE_BIN)",
        bin.display()
    );
    bin
}

/// A command running the binary under test with none of the test run's
/// own `CHANGEWIRE_*` variables (CHANGEWIRE_BIN, CHANGEWIRE_TEST_PG, ...):
/// the gateway refuses unknown `CHANGEWIRE_*` settings, so the child sees
/// only what the test sets on the command.
pub fn command() -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CHANGEWIRE_") {
            cmd.env_remove(&k);
        }
    }
    cmd
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A `changewire serve` process.
pub struct GatewayProcess {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    env: Vec<(String, String)>,
}

impl GatewayProcess {
    /// Starts `changewire serve` with these `CHANGEWIRE_*` variables (plus a
    /// port, the admin token, loopback delivery allowed, quiet logs).
    pub async fn start(env: &[(&str, String)]) -> GatewayProcess {
        let port = free_port();
        let mut all: Vec<(String, String)> = vec![
            ("CHANGEWIRE_LISTEN".into(), format!("127.0.0.1:{port}")),
            ("CHANGEWIRE_ADMIN_TOKEN".into(), ADMIN_TOKEN.into()),
            ("CHANGEWIRE_ALLOW_HTTP".into(), "true".into()),
            ("CHANGEWIRE_ALLOW_PRIVATE_NETWORKS".into(), "true".into()),
            ("CHANGEWIRE_LOG__LEVEL".into(), "warn".into()),
            ("CHANGEWIRE_DELIVERY__POLL_INTERVAL_MS".into(), "20".into()),
        ];
        for (k, v) in env {
            all.retain(|(ek, _)| ek != k);
            all.push(((*k).to_string(), v.clone()));
        }
        let mut gw = GatewayProcess {
            child: None,
            base: format!("http://127.0.0.1:{port}"),
            env: all,
        };
        gw.spawn().await;
        gw
    }

    async fn spawn(&mut self) {
        let mut cmd = command();
        cmd.arg("serve")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("spawn changewire"));
        let healthz = format!("{}/healthz", self.base);
        for _ in 0..300 {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("changewire exited at start-up: {status}");
            }
            let probe = tokio::time::timeout(
                Duration::from_millis(500),
                http::try_request("GET", &healthz, &[], None),
            )
            .await;
            if matches!(probe, Ok(Ok(ref r)) if r.status == 200) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("changewire did not become healthy");
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, no goodbye.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again after a kill, same configuration.
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// Starts again after a kill with these variables changed (a new
    /// configuration, e.g. another capture mode).
    pub async fn restart_with(&mut self, changed: &[(&str, String)]) {
        self.kill9();
        for (k, v) in changed {
            self.env.retain(|(ek, _)| ek != k);
            self.env.push(((*k).to_string(), v.clone()));
        }
        self.spawn().await;
    }

    /// SIGTERM, then waits for the exit (at most `limit`).
    pub fn sigterm(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// A GraphQL call as admin; panics on errors.
    pub async fn graphql(&self, query: &str, variables: Value) -> Value {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let body = json!({"query": query, "variables": variables})
            .to_string()
            .into_bytes();
        let r = http::request(
            "POST",
            &format!("{}/graphql", self.base),
            &[
                ("content-type", "application/json"),
                ("authorization", &auth),
            ],
            Some(body),
        )
        .await
        .json();
        assert!(r.get("errors").is_none(), "{r:#}");
        r["data"].clone()
    }

    /// Registers a receiver subscribed to (resource, action); returns (id, secret).
    pub async fn register(
        &self,
        url: &str,
        resource: &str,
        action: &str,
        extra: Value,
    ) -> (String, String) {
        let mut input = json!({"name": "e2e", "webhookUri": url});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            input[k] = v;
        }
        let created = self
            .graphql(
                "mutation($i: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $i) { webhookReceiver { id sharedSecret } } }",
                json!({"i": input}),
            )
            .await;
        let r = &created["createWebhookReceiver"]["webhookReceiver"];
        let id = r["id"].as_str().expect("id").to_string();
        self.graphql(
            &format!("mutation {{ createWebhookSubscription(input: {{ receiverId: \"{id}\", resource: {resource}, action: {action} }}) {{ webhookSubscription {{ id }} }} }}"),
            json!({}),
        )
        .await;
        (id, r["sharedSecret"].as_str().expect("secret").to_string())
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}
