// What the console's browser tests run against: a real `changewire serve`
// (SQLite store in a temporary directory), a loopback receiver that records
// what it gets, and Debian's Chromium driven by playwright-core.

import { spawn } from "node:child_process";
import { mkdtempSync, existsSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
export const ADMIN_TOKEN = "console-browser-tests-admin-token-0123456789";

/** The gateway binary: $CHANGEWIRE_BIN, or the debug build of this checkout. */
export function binary() {
  const candidates = [
    process.env.CHANGEWIRE_BIN,
    process.env.CARGO_TARGET_DIR && join(process.env.CARGO_TARGET_DIR, "debug/changewire"),
    join(repo, "target/debug/changewire"),
  ].filter(Boolean);
  const found = candidates.find((p) => existsSync(p));
  if (!found) {
    throw new Error(`changewire binary not found (tried ${candidates.join(", ")}): run \`cargo build -p changewire-gateway\``);
  }
  return found;
}

/** Debian's Chromium; the tests fail (never skip) without it. */
export function chromiumPath() {
  const path = process.env.CHROMIUM || "/usr/bin/chromium";
  if (!existsSync(path)) {
    throw new Error(`${path} not found: \`make browser\` installs Debian's chromium package`);
  }
  return path;
}

/** A receiver on loopback: records each delivery, answers 200 (500 on `failPaths`). */
export async function startReceiver() {
  const received = [];
  const failPaths = new Set();
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      received.push({ path: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") });
      const failing = failPaths.has(req.url);
      res.writeHead(failing ? 500 : 200, { "content-type": "text/plain" });
      res.end(failing ? "failing on purpose" : "ok");
    });
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  return { received, failPaths, url: (path) => `http://127.0.0.1:${port}${path}`, close: () => server.close() };
}

async function freePort() {
  const server = createServer();
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  const { port } = server.address();
  await new Promise((ok) => server.close(ok));
  return port;
}

/** `changewire serve` on a fresh SQLite store. */
export async function startGateway() {
  const dir = mkdtempSync(join(tmpdir(), "changewire-console-"));
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CHANGEWIRE_")));
  Object.assign(env, {
    CHANGEWIRE_LISTEN: `127.0.0.1:${port}`,
    CHANGEWIRE_STORE: `sqlite://${join(dir, "store.db")}`,
    CHANGEWIRE_ADMIN_TOKEN: ADMIN_TOKEN,
    CHANGEWIRE_ALLOW_HTTP: "true",
    CHANGEWIRE_ALLOW_PRIVATE_NETWORKS: "true",
    CHANGEWIRE_RESOURCES: "RUNS=runs",
    CHANGEWIRE_LOG__LEVEL: "warn",
    CHANGEWIRE_DELIVERY__POLL_INTERVAL_MS: "20",
  });
  const child = spawn(binary(), ["serve"], { env, stdio: ["ignore", "ignore", "inherit"] });
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`changewire exited at start-up (${child.exitCode})`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch (_) {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("changewire did not become healthy in 30 s");
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return {
    base,
    async stop() {
      child.kill("SIGTERM");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A GraphQL call as the admin (or with `token`); throws on errors. */
export async function graphql(base, query, variables = {}, token = ADMIN_TOKEN) {
  const r = await fetch(`${base}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await r.json();
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** Publishes a row change through `POST /v1/events`; returns the event ids. */
export async function publish(base, change) {
  const r = await fetch(`${base}/v1/events`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${ADMIN_TOKEN}` },
    body: JSON.stringify(change),
  });
  if (r.status !== 202) throw new Error(`ingest answered ${r.status}: ${await r.text()}`);
  return r.json();
}

/** Waits until `probe()` is truthy (bounded). */
export async function eventually(probe, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
}

/** Headless Chromium, with nothing reaching outside this machine. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * A page that records console errors and uncaught exceptions. `expect4xx`
 * lists URL parts whose "Failed to load resource" errors a test causes on
 * purpose (URL guessing).
 */
export async function watchedPage(context, problems, expect4xx = []) {
  const page = await context.newPage();
  page.on("pageerror", (e) => problems.push(`uncaught: ${e.message} on ${page.url()}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const text = msg.text();
    const expected = text.startsWith("Failed to load resource") && expect4xx.some((u) => page.url().includes(u));
    if (!expected) problems.push(`console error: ${text} on ${page.url()}`);
  });
  return page;
}
