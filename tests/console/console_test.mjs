// The web console in a real browser (Debian's chromium, headless, driven by playwright-core)
// against a real platform that console_browser_test starts: log in; apply a service; start a
// canary and see its weight change live; promote it from the page; watch a bad canary (beside
// its baseline) roll back with its reason, without a reload; the autoscaling chart under a load step; nodes and
// events; one event stream per view. Screenshots go to $SHOTS.
//
// Environment (set by tests/integration/console_browser_test.cc):
//   URL       the console, http://127.0.0.1:PORT/
//   TOKEN     an admin token
//   SERVICE   the service's name; SPEC its ServiceSpec as JSON (canary: 20 %, pause, 100 %)
//   V2_IMAGE  the image of the good release
//   BAD_RELEASE  a StartReleaseRequest (JSON) whose canary fails its analysis
//   AUTOSCALE    a SetPolicyRequest (JSON); SERVICE_URL where the service answers
//   METRICS   hostd's /metrics address; SHOTS the screenshot directory
//   CHROMIUM  the browser (default /usr/bin/chromium)
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// playwright-core as the console's lock file pins it (npm ci in console/).
const { chromium } = require(
  process.env.PLAYWRIGHT ??
    new globalThis.URL("../../console/node_modules/playwright-core", import.meta.url).pathname,
);

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL = env("URL");
const TOKEN = env("TOKEN");
const SERVICE = env("SERVICE");
const SHOTS = env("SHOTS");
mkdirSync(SHOTS, { recursive: true });

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

async function api(service, method, body) {
  const r = await fetch(new globalThis.URL(`/v1/${service}/${method}`, URL), {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await r.json();
  if (!r.ok) throw new Error(`${service}/${method}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

// Event streams hostd holds open now (its hostd_event_watchers gauge).
async function watchers() {
  for (let attempt = 1; ; ++attempt) {
    try {
      // A kept-alive connection the exporter already closed fails: try again on a new one.
      const r = await fetch(`http://${env("METRICS")}/metrics`);
      const m = /^hostd_event_watchers (\S+)/m.exec(await r.text());
      return m ? Number(m[1]) : -1;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

async function until(what, check, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out (${timeoutMs / 1000} s) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const consoleErrors = [];
page.on("pageerror", (e) => consoleErrors.push(String(e)));
// The page's calls, for the failure report: method, path, status.
const calls = [];
const noteCall = (what) => {
  calls.push(`${((Date.now() - started) / 1000).toFixed(1)}s ${what}`);
  if (calls.length > 40) calls.shift();
};
page.on("requestfinished", async (r) => {
  if (!r.url().includes("/v1/")) return;
  const response = await r.response();
  noteCall(`${r.method()} ${new globalThis.URL(r.url()).pathname} ${r.postData() ?? ""} -> ${response?.status()}`);
});
page.on("requestfailed", (r) => noteCall(`${r.method()} ${r.url()} FAILED ${r.failure()?.errorText}`));
const text = (selector) => page.locator(selector).first().textContent({ timeout: 5000 });
const shot = async (name) => {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
  log(`screenshot ${name}.png`);
};
// Marks the document: a reload would lose the mark.
const mark = () => page.evaluate(() => (window.__noReload = true));
const stillSamePage = () => page.evaluate(() => window.__noReload === true);
let failed = false;

try {
  // --- First load: size and time on loopback.
  const bytes = { total: 0 };
  page.on("response", async (r) => {
    try {
      bytes.total += (await r.body()).length;
    } catch {
      /* a streamed response */
    }
  });
  const t0 = Date.now();
  await page.goto(URL, { waitUntil: "load" });
  await page.waitForSelector("#token");
  const loadMs = Date.now() - t0;
  const nav = await page.evaluate(() => performance.getEntriesByType("navigation")[0].toJSON());
  log(`first load: ${bytes.total} bytes, ${loadMs} ms to the login form (DOMContentLoaded ${nav.domContentLoadedEventEnd.toFixed(0)} ms)`);
  console.log(`CONSOLE_FIRST_LOAD bytes=${bytes.total} ms=${loadMs}`);

  // --- Log in: a wrong token is refused with the reason, the right one lets in.
  await page.fill("#token", "hst_wrong");
  await page.click("#login");
  await page.waitForSelector("#login-error");
  if (!(await text("#login-error")).includes("UNAUTHENTICATED")) throw new Error("no reason for a bad token");
  await page.fill("#token", TOKEN);
  await page.click("#login");
  await page.waitForSelector("#who");
  log(`logged in as ${await text("#who")}`);

  // --- Apply: a bad spec names its fields; the good one runs.
  await page.fill("#spec", JSON.stringify({ name: "Bad Name" }));
  await page.click("#apply");
  await page.waitForSelector(".error li");
  const violations = await page.locator(".error").first().textContent();
  if (!violations.includes("spec.name") || !violations.includes("spec.image")) {
    throw new Error(`field violations not shown: ${violations}`);
  }
  await shot("apply-error");
  await page.fill("#spec", env("SPEC"));
  await page.click("#apply");
  await page.waitForSelector("#applied");
  await until(
    `${SERVICE} running 2 / 2`,
    async () => ((await page.locator(`tr[data-service="${SERVICE}"]`).textContent().catch(() => "")) ?? "").includes("2 / 2"),
    90_000,
  );
  await shot("services");

  // --- The service: revisions, tasks per node with their health.
  await page.click(`a[href="#/services/${SERVICE}"]`);
  await until("two healthy tasks", async () => (await page.locator("#revisions .task.ok").count()) >= 2, 60_000);
  await shot("service");

  // --- A canary from the page: 20 %, paused; the weight shows up live; promote.
  await page.fill("#release-image", env("V2_IMAGE"));
  await page.selectOption("#release-strategy", "RELEASE_STRATEGY_CANARY");
  await mark();
  await page.click("#start-release");
  await page.waitForURL(/#\/releases\//);
  const releaseId = decodeURIComponent(page.url().split("#/releases/")[1]);
  log(`release ${releaseId} started`);
  await until("the canary at 20 %", async () => (await text("#weight")) === "20", 120_000);
  await until("the canary waiting for promotion", async () => (await text("#release-state")) === "waiting for promotion", 60_000);
  if (!(await stillSamePage())) throw new Error("the page reloaded");
  if ((await watchers()) !== 1) throw new Error(`release view holds ${await watchers()} streams, want 1`);
  await shot("release-canary");
  await page.click("#promote");
  await until("the release succeeded", async () => (await text("#release-state")) === "succeeded", 120_000);
  if ((await text("#weight")) !== "100") throw new Error("weight not 100 after the promotion");
  await shot("release-promoted");
  log(`release ${releaseId} promoted from the page and succeeded`);

  // --- A bad canary (started through the gateway): the rollback and its reason appear live.
  const bad = await api("Releases", "StartRelease", JSON.parse(env("BAD_RELEASE")));
  await mark();
  await page.evaluate((id) => (location.hash = `#/releases/${encodeURIComponent(id)}`), bad.id);
  // Its baseline (a fresh copy of the stable revision) shows in the traffic bar while it runs,
  // with the canary's share.
  let baselineBar = "";
  await until(
    "the baseline in the traffic bar",
    async () => {
      if ((await page.locator("#baseline").count()) === 0) return false;
      baselineBar = ((await text("#baseline")) ?? "").trim();
      return /^r\d+ baseline 20%$/.test(baselineBar);
    },
    120_000,
  );
  await page.waitForTimeout(500); // the bar's widths ease in over 0.3 s
  await shot("release-baseline");
  await until("the bad canary rolled back", async () => (await text("#release-state")) === "rolled back", 150_000);
  await until("the analysis' reason", async () => ((await text("#analyses")) ?? "").includes("5xx ratio"), 10_000);
  const analyses = await text("#analyses");
  if (!analyses.includes("against baseline revision") || !analyses.includes("/ baseline ")) {
    throw new Error(`the analysis does not name the baseline it compared with: ${analyses}`);
  }
  log(`bad release's baseline shown as "${baselineBar}"`);
  if (!(await stillSamePage())) throw new Error("the page reloaded");
  log(`bad release ${bad.id} rolled back: ${await text("#release-message")}`);
  await shot("release-rolled-back");

  // --- Autoscaling: the chart and the replica count move under a load step.
  await api("Autoscaling", "SetPolicy", JSON.parse(env("AUTOSCALE")));
  await page.evaluate((s) => (location.hash = `#/autoscaling/${s}`), SERVICE);
  await until("chart samples", async () => Number(await page.getAttribute("#autoscaling-chart", "data-points")) >= 5, 30_000);
  const before = Number(await text("#replicas"));
  let loading = true;
  const serviceUrl = env("SERVICE_URL");
  const load = (async () => {
    // About 90 requests/s from 6 clients.
    await Promise.all(
      Array.from({ length: 6 }, async () => {
        while (loading) {
          const t = Date.now();
          try {
            await (await fetch(serviceUrl)).arrayBuffer();
          } catch {
            /* counted by nobody: the chart is what is checked */
          }
          await new Promise((r) => setTimeout(r, Math.max(0, 66 - (Date.now() - t))));
        }
      }),
    );
  })();
  await until(`more than ${before} replicas`, async () => Number(await text("#replicas")) > before, 120_000);
  await until("a scale-up decision listed", async () => ((await text("#decisions")) ?? "").includes("rps"), 30_000);
  await new Promise((r) => setTimeout(r, 4000));
  await shot("autoscaling");
  loading = false;
  await load;
  log(`autoscaling: ${before} -> ${await text("#replicas")} replicas under load`);

  // --- Nodes and agents; the event stream; runbooks.
  await page.click('a[href="#/nodes"]');
  await until("a connected agent", async () => ((await text("#nodes")) ?? "").includes("connected"), 15_000);
  await shot("nodes");
  await page.click('a[href="#/events"]');
  await page.waitForSelector("#events");
  // Something happens while the page watches: the autoscaling policy goes.
  await until("the events view's stream", async () => (await watchers()) === 1, 10_000);
  await api("Autoscaling", "DeletePolicy", { service: SERVICE });
  await until("the policy's deletion, live", async () => ((await text("#events")) ?? "").includes("autoscale.policy_deleted"), 30_000);
  if ((await watchers()) !== 1) throw new Error(`events view holds ${await watchers()} streams, want 1`);
  await shot("events");
  await page.click('a[href="#/runbooks"]');
  await until("the runbooks listed", async () => ((await page.locator("main").textContent()) ?? "").includes("backup"), 15_000);
  // Leaving a live view closes its stream.
  await until("no stream left open", async () => (await watchers()) === 0, 10_000);
  await shot("runbooks");

  if (consoleErrors.length > 0) throw new Error(`errors in the page: ${consoleErrors.join("; ")}`);
  log("all console checks passed");
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack ?? e}${e.cause ? ` (cause: ${e.cause.stack ?? e.cause})` : ""}`);
  console.error(`the page's last calls:\n  ${calls.join("\n  ")}`);
  const errors = await page.locator(".error").allTextContents().catch(() => []);
  if (errors.length > 0) console.error(`errors shown: ${errors.join(" | ")}`);
  await shot("failure").catch(() => {});
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
