// The web console in a real browser (Debian's Chromium): sign in, live
// events, an event's diff and attempts, retry, secret rotation, the
// signature debugger on a real delivery, receiver-scoped magic links,
// used and expired links, a viewer's session, and no browser errors.
// Screenshots of each page go to docs/console/ (shown in README).

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import {
  ADMIN_TOKEN, binary, eventually, graphql, launchBrowser, publish, repo, startGateway, startReceiver, watchedPage,
} from "./harness.mjs";

const shots = join(repo, "docs/console");
mkdirSync(shots, { recursive: true });

let gateway, receiver, browser, admin, page;
const problems = [];
const ids = {};

async function createReceiver(name, path, extra = {}) {
  const data = await graphql(
    gateway.base,
    `mutation($input: CreateWebhookReceiverInput!) { createWebhookReceiver(input: $input) { webhookReceiver { id sharedSecret } } }`,
    { input: { name, webhookUri: receiver.url(path), signatureSchemes: ["ION", "STANDARD"], ...extra } },
  );
  const id = data.createWebhookReceiver.webhookReceiver.id;
  for (const action of ["CREATE", "UPDATE"]) {
    await graphql(
      gateway.base,
      `mutation($r: ID!, $a: WebhookSubscriptionActions!) { createWebhookSubscription(input: { receiverId: $r, resource: RUNS, action: $a }) { webhookSubscription { id } } }`,
      { r: id, a: action },
    );
  }
  return id;
}

/** Clicks a form's button and waits for the page it leads to (`path`), so nothing reads the page it left. */
async function submit(p, button, path) {
  await Promise.all([
    p.waitForResponse((r) => r.request().resourceType() === "document" && r.status() === 200 && new URL(r.url()).pathname === path),
    p.getByRole("button", { name: button }).click(),
  ]);
  await p.waitForLoadState("load");
}

async function eventsOf(receiverId) {
  const data = await graphql(
    gateway.base,
    `query($r: Int) { webhookEvents(filters: { receiverId: $r }) { id status attemptCount } }`,
    { r: Number(receiverId) },
  );
  return data.webhookEvents;
}

async function link(input) {
  const data = await graphql(gateway.base, `mutation($i: CreateConsoleSessionInput!) { createConsoleSession(input: $i) { id url expiresAt } }`, { i: input });
  return data.createConsoleSession;
}

before(async () => {
  receiver = await startReceiver();
  gateway = await startGateway();
  ids.a = await createReceiver("orders service", "/a");
  ids.b = await createReceiver("billing service", "/b");
  await publish(gateway.base, {
    resource: "RUNS", action: "UPDATE", id: 1, transactionId: "9001",
    old: { id: 1, title: "Build 42", status: "queued", operator: null },
    new: { id: 1, title: "Build 42", status: "in_progress", operator: "ada" },
  });
  await eventually(async () => (await eventsOf(ids.a)).every((e) => e.status === "succeeded") && (await eventsOf(ids.b)).length === 1, "the first deliveries");
  ids.firstEventA = (await eventsOf(ids.a))[0].id;
  browser = await launchBrowser();
  admin = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  // The wrong token (401) and the broken edit form (400) are answered so on purpose.
  page = await watchedPage(admin, problems, ["/console/login", "/edit"]);
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  receiver?.close();
});

describe("the console", { concurrency: false }, () => {
  test("a wrong token is refused and the admin token signs in", async () => {
    await page.goto(`${gateway.base}/console`);
    assert.match(page.url(), /\/console\/login$/);
    await page.getByLabel("Admin token or API key").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").waitFor();
    assert.match(await page.getByRole("alert").textContent(), /neither the admin token nor a live API key/);
    await page.getByLabel("Admin token or API key").fill(ADMIN_TOKEN);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Overview" }).waitFor();
    const rows = page.locator("table.receivers tbody tr");
    assert.equal(await rows.count(), 2);
    assert.match(await rows.first().textContent(), /orders service/);
    const cookies = await admin.cookies();
    const session = cookies.find((c) => c.name === "changewire_console");
    assert.ok(session?.httpOnly, "the session cookie is HttpOnly");
    assert.equal(session.sameSite, "Strict");
    await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
  });

  test("a new event appears live, without a reload", async () => {
    await page.goto(`${gateway.base}/console/events?receiver=${ids.a}`);
    const before = await page.locator("#event-rows tr").count();
    await page.evaluate(() => { window.__notReloaded = true; });
    const [published] = await publish(gateway.base, {
      resource: "RUNS", action: "UPDATE", id: 2, transactionId: "9002",
      old: { id: 2, title: "Build 43", status: "queued", finished_at: "2026-12-01" },
      new: { id: 2, title: "Build 43", status: "complete", finished_at: null },
    }).then((r) => [r]);
    assert.ok(published);
    await eventually(async () => (await page.locator("#event-rows tr").count()) > before, "the live row", 10_000);
    assert.equal(await page.evaluate(() => window.__notReloaded), true, "the page was not reloaded");
    const newest = page.locator("#event-rows tr").first();
    assert.match(await newest.textContent(), /RUNS\s*UPDATE\s*2/);
    ids.liveEvent = await newest.getAttribute("data-event-id");
    await page.screenshot({ path: join(shots, "events.png"), fullPage: true });
  });

  test("an event shows its row change, its attempts, and Retry sends it again", async () => {
    await eventually(async () => (await eventsOf(ids.a)).every((e) => e.status === "succeeded"), "delivery of the live event");
    await page.goto(`${gateway.base}/console/events/${ids.liveEvent}`);
    await page.getByRole("heading", { name: "Row change" }).waitFor();
    const changed = page.locator("table.diff tr.changed");
    assert.deepEqual((await changed.locator("th").allTextContents()).map((t) => t.split(" ")[0]).sort(), ["finished_at", "status"]);
    assert.equal(await page.locator("table.diff tr.null-transition th").count(), 1, "finished_at went to null");
    assert.match(await page.locator("#transaction").textContent(), /9002/);
    assert.equal(await page.locator("#attempts tbody tr").count(), 1);
    assert.match(await page.locator("#body-sent").textContent(), /"status":\s*"complete"/);
    await page.screenshot({ path: join(shots, "event.png"), fullPage: true });
    const deliveredBefore = receiver.received.length;
    // The form posts and comes back to this page: wait for that before reloading.
    await submit(page, "Retry", `/console/events/${ids.liveEvent}`);
    await eventually(async () => {
      await page.reload();
      return (await page.locator("#attempts tbody tr").count()) === 2;
    }, "the retried attempt");
    assert.ok(receiver.received.length > deliveredBefore, "the receiver got it again");
  });

  test("the signature debugger verifies a real delivery with the stored secret", async () => {
    await page.goto(`${gateway.base}/console/events/${ids.liveEvent}`);
    await page.getByRole("link", { name: "Check a signature of this delivery" }).click();
    assert.match(await page.getByLabel("Headers (one `name: value` per line)").inputValue(), /x-ion-signature:/);
    await page.getByRole("button", { name: "Check" }).click();
    const verdict = page.locator("#verdict");
    await verdict.waitFor();
    assert.match(await verdict.textContent(), /Verified with: ion, standard/);
    assert.match(await page.locator("pre.signed-string").first().textContent(), /127\.0\.0\.1/);
    await page.screenshot({ path: join(shots, "debugger.png"), fullPage: true });
    // A pasted wrong URL is explained.
    await page.getByLabel("URL, exactly as registered").fill(receiver.url("/a/"));
    await submit(page, "Check", "/console/debugger");
    assert.match(await page.locator("#verdict").textContent(), /trailing slash/);
  });

  test("a rotated secret is shown once", async () => {
    await page.goto(`${gateway.base}/console/receivers/${ids.a}`);
    await page.getByRole("button", { name: "Rotate secret" }).click();
    const secret = (await page.locator("#new-secret").textContent()).trim();
    assert.match(secret, /^whsec_/);
    assert.match(await page.locator("#overlap-note").textContent(), /both the old and the new secret/);
    await page.screenshot({ path: join(shots, "secret.png") });
    await page.goto(`${gateway.base}/console/receivers/${ids.a}`);
    assert.ok(!(await page.content()).includes(secret), "the secret is not shown again");
    await page.screenshot({ path: join(shots, "receiver.png"), fullPage: true });
  });

  test("receivers are created, edited, given headers and subscriptions from the console", async () => {
    await page.goto(`${gateway.base}/console/receivers`);
    await page.getByRole("link", { name: "New receiver" }).click();
    await page.getByLabel("Name", { exact: true }).fill("warehouse");
    await page.getByLabel("URL").fill(receiver.url("/w"));
    await page.getByRole("button", { name: "Save" }).click();
    const secret = (await page.locator("#new-secret").textContent()).trim();
    assert.match(secret, /^whsec_/);
    await page.getByRole("link", { name: "Go to the receiver" }).click();
    await page.waitForURL(/\/console\/receivers\/\d+$/);
    const id = page.url().split("/").pop();
    // A broken rule shows the form again, naming the field; nothing changes.
    await page.getByRole("link", { name: "Edit settings" }).click();
    await page.getByLabel("URL").fill("ftp://files.example.com/drop");
    await page.getByRole("button", { name: "Save" }).click();
    assert.match(await page.getByRole("alert").textContent(), /`webhookUri`/);
    assert.equal(await page.getByLabel("URL").inputValue(), "ftp://files.example.com/drop", "what was typed is kept");
    await page.goto(`${gateway.base}/console/receivers/${id}`);
    assert.match(await page.locator("#receiver-url").textContent(), /\/w$/);
    await page.getByLabel("Header name").fill("X-Api-Key");
    await page.getByLabel("Value (stored encrypted, shown masked)").fill("sk_live_0123456789abcdef");
    await submit(page, "Add header", `/console/receivers/${id}`);
    const headers = await page.locator("section[aria-labelledby=headers-h]").textContent();
    assert.match(headers, /X-Api-Key/);
    assert.ok(!headers.includes("sk_live_0123456789abcdef"), "the value is masked");
    assert.match(headers, /\*{8}cdef/);
    await page.getByLabel("Resource").selectOption("RUNS");
    await page.getByLabel("Action").selectOption("DELETE");
    await submit(page, "Subscribe", `/console/receivers/${id}`);
    assert.match(await page.locator("section[aria-labelledby=subs-h] tbody").textContent(), /RUNS\s*DELETE/);
    await page.screenshot({ path: join(shots, "receiver-edit.png"), fullPage: true });
  });

  test("failed events are redelivered with a progress bar", async () => {
    receiver.failPaths.add("/fail");
    const failing = await createReceiver("flaky service", "/fail", { maxAttempts: 1 });
    await publish(gateway.base, { resource: "RUNS", action: "CREATE", id: 77, new: { id: 77, title: "Build 77" } });
    await eventually(async () => (await eventsOf(failing)).some((e) => e.status === "failed"), "the failed delivery");
    receiver.failPaths.delete("/fail");
    await page.goto(`${gateway.base}/console/receivers/${failing}/redeliver`);
    assert.match(await page.locator("#matching").textContent(), /^1 failed events/);
    await page.getByRole("button", { name: "Redeliver them" }).click();
    await page.waitForURL("**/console/redeliveries/*");
    await eventually(async () => {
      await page.reload();
      return (await page.locator("#job-status").textContent()).includes("finished");
    }, "the job to finish");
    assert.equal(await page.locator("#progress").getAttribute("value"), "1");
    assert.equal(await page.locator("#progress").getAttribute("max"), "1");
    await page.screenshot({ path: join(shots, "redelivery.png") });
    await eventually(async () => (await eventsOf(failing)).every((e) => e.status === "succeeded"), "the redelivered event to succeed");
  });

  test("a plugin is attached from the console and dry-run on a recorded event", async () => {
    const wasm = join(repo, "plugins/target/wasm32-wasip2/release/redact_fields.wasm");
    assert.ok(existsSync(wasm), `${wasm} is built by plugins/build.sh (run-tests.sh does)`);
    await page.goto(`${gateway.base}/console/receivers/${ids.a}`);
    await page.getByLabel("WebAssembly component (.wasm)").setInputFiles(wasm);
    await page.getByLabel("Name", { exact: true }).fill("redact operator");
    await page.getByLabel("Configuration (JSON object)").fill('{"fields": ["operator"]}');
    await page.getByRole("button", { name: "Attach plugin" }).click();
    assert.match(await page.locator("#plugin-name").textContent(), /redact operator/);
    const deliveredBefore = receiver.received.length;
    await page.goto(`${gateway.base}/console/events/${ids.firstEventA}`);
    await page.getByRole("button", { name: "Dry-run the plugin" }).click();
    assert.match(await page.locator("#dry-run-outcome").textContent(), /Sent transformed/);
    const out = await page.locator("#dry-run-body").textContent();
    assert.ok(!out.includes('"ada"'), `the operator is redacted: ${out}`);
    assert.match(out, /"status":\s*"in_progress"/);
    assert.match(await page.locator("#dry-run-time").textContent(), /Took \d+ µs/);
    await page.screenshot({ path: join(shots, "plugin-dry-run.png"), fullPage: true });
    assert.equal(receiver.received.length, deliveredBefore, "a dry run sends nothing");
    await page.goto(`${gateway.base}/console/receivers/${ids.a}`);
    await submit(page, "Detach plugin", `/console/receivers/${ids.a}`);
    assert.equal(await page.locator("#plugin-name").count(), 0);
  });

  test("a receiver-scoped link sees only its receiver, even by URL guessing", async () => {
    const bEvents = await eventsOf(ids.b);
    const scoped = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const p = await watchedPage(scoped, problems, ["/console/events/", "/console/receivers/", "/console/events?"]);
    const { url } = await link({ receiverId: ids.a });
    assert.match(url, /^\/console\/link\//);
    await p.goto(gateway.base + url);
    await p.waitForURL(`**/console/receivers/${ids.a}`);
    assert.match(await p.locator("h1").textContent(), /orders service/);
    await p.screenshot({ path: join(shots, "portal-phone.png"), fullPage: true });
    await p.goto(`${gateway.base}/console/events`);
    const shown = await p.locator("#event-rows tr").evaluateAll((rows) => rows.map((r) => r.querySelector("td:nth-child(3)").textContent.trim()));
    assert.ok(shown.length > 0 && shown.every((r) => r === ids.a), `only receiver ${ids.a}: ${shown}`);
    for (const path of [`/console/events/${bEvents[0].id}`, `/console/receivers/${ids.b}`, `/console/events?receiver=${ids.b}`]) {
      const response = await p.goto(gateway.base + path);
      assert.equal(response.status(), 404, path);
      assert.ok(!(await p.content()).includes("billing service"), path);
    }
    const overview = await p.goto(`${gateway.base}/console`);
    assert.match(overview.url(), new RegExp(`/console/receivers/${ids.a}$`));
    await scoped.close();
  });

  test("a used link and an expired link are refused", async () => {
    const { url } = await link({});
    const first = await browser.newContext();
    const p1 = await watchedPage(first, problems);
    await p1.goto(gateway.base + url);
    await p1.getByRole("heading", { name: "Events" }).waitFor();
    await first.close();
    const second = await browser.newContext();
    const p2 = await watchedPage(second, problems, ["/console/link/"]);
    await p2.goto(gateway.base + url);
    await p2.getByRole("alert").waitFor();
    assert.match(await p2.getByRole("alert").textContent(), /already used, was revoked, or has expired/);
    const expired = await link({ ttlSeconds: 1 });
    await new Promise((ok) => setTimeout(ok, 1_500));
    await p2.goto(gateway.base + expired.url);
    await p2.getByRole("alert").waitFor();
    assert.match(await p2.getByRole("alert").textContent(), /has expired/);
    assert.equal((await second.cookies()).filter((c) => c.name === "changewire_console").length, 0);
    await second.close();
  });

  test("a viewer sees no working mutation", async () => {
    const viewer = await browser.newContext();
    const p = await watchedPage(viewer, problems, ["/console/"]);
    const { url } = await link({ readOnly: true });
    await p.goto(gateway.base + url);
    await p.goto(`${gateway.base}/console/receivers/${ids.a}`);
    assert.match(await p.locator(".role").textContent(), /read-only/);
    const buttons = p.locator("form.action button");
    assert.ok((await buttons.count()) >= 3);
    for (const b of await buttons.all()) assert.ok(await b.isDisabled(), await b.textContent());
    // Enabled by hand, the server still refuses, and nothing changes.
    const before = (await eventsOf(ids.a)).length;
    await p.locator("form.action button", { hasText: "Send test" }).evaluate((b) => { b.disabled = false; });
    await p.getByRole("button", { name: "Send test" }).click();
    await p.getByRole("alert").waitFor();
    assert.match(await p.getByRole("alert").textContent(), /read-only/);
    assert.equal((await eventsOf(ids.a)).length, before);
    await viewer.close();
  });

  test("GraphiQL renders with no internet: every asset comes from the gateway", async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    // Without a token pasted in its headers editor, the schema request is answered 401.
    const p = await watchedPage(context, problems, ["/graphql"]);
    const foreign = [];
    p.on("request", (r) => { if (!r.url().startsWith(gateway.base)) foreign.push(r.url()); });
    await p.goto(`${gateway.base}/graphql`);
    await p.locator(".graphiql-container").waitFor({ timeout: 15_000 });
    assert.deepEqual(foreign, []);
    await context.close();
  });

  test("quickstart ends with a console link that opens on its four deliveries", async () => {
    const dir = mkdtempSync(join(tmpdir(), "changewire-quickstart-"));
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("CHANGEWIRE_")));
    const child = spawn(binary(), ["quickstart", "--serve", "--dir", dir], { env, stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (chunk) => { out += chunk; });
    try {
      const url = await eventually(() => (out.match(/http:\/\/127\.0\.0\.1:\d+\/console\/link\/\S+/) || [])[0], "the console link", 60_000);
      const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
      const p = await watchedPage(context, problems);
      await p.goto(url);
      await p.getByRole("heading", { name: "Events" }).waitFor();
      const rows = p.locator("#event-rows tr");
      assert.equal(await rows.count(), 4);
      assert.deepEqual((await rows.locator("td:nth-child(5)").allTextContents()).sort(), ["CREATE", "DELETE", "UPDATE", "UPDATE"]);
      assert.equal(await rows.locator(".state.good").count(), 4, "all four succeeded");
      await context.close();
    } finally {
      child.kill("SIGINT");
      await new Promise((ok) => (child.exitCode !== null ? ok() : child.once("exit", ok)));
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("no page logged a browser error", () => {
    assert.deepEqual(problems, []);
  });
});
