// A console page left open: the live events view and the polling services view, in Debian's
// chromium, for MINUTES minutes while hostd's event log keeps moving (a service re-applied
// every 2 s with another replica count). Every minute it samples each page's JS heap and DOM
// node count (the DevTools protocol's Performance.getMetrics) and hostd's open event streams;
// it fails when a page's heap or node count at the end is over 1.5x what it was after the
// first fifth of the run, or when hostd holds other than one stream (the events view's).
//
//   URL=http://127.0.0.1:8480/ TOKEN=... METRICS=127.0.0.1:9464 MINUTES=60 \
//     node tests/console/soak.mjs
//
// hostd needs no Swarm for it: run it with an unreachable --docker-host, and the service it
// re-applies is only ever stored (docs/console.md).
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
// playwright-core as the console's lock file pins it (npm ci in console/).
const { chromium } = require(
  process.env.PLAYWRIGHT ??
    new globalThis.URL("../../console/node_modules/playwright-core", import.meta.url).pathname,
);
const URL = process.env.URL;
const TOKEN = process.env.TOKEN;
const METRICS = process.env.METRICS;
const MINUTES = Number(process.env.MINUTES ?? 60);
if (!URL || !TOKEN || !METRICS) throw new Error("URL, TOKEN and METRICS are required");

async function api(service, method, body) {
  const r = await fetch(new globalThis.URL(`/v1/${service}/${method}`, URL), {
    method: "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`${service}/${method}: ${r.status} ${await r.text()}`);
  return r.json();
}

async function watchers() {
  for (let attempt = 1; ; ++attempt) {
    try {
      const text = await (await fetch(`http://${METRICS}/metrics`)).text();
      const m = /^hostd_event_watchers (\S+)/m.exec(text);
      return m ? Number(m[1]) : -1;
    } catch (e) {
      if (attempt === 3) throw e;
    }
  }
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext();
await context.addInitScript((token) => sessionStorage.setItem("hosting.token", token), TOKEN);
const pages = {};
for (const [name, hash] of [
  ["events", "#/events"],
  ["services", "#/services"],
]) {
  const page = await context.newPage();
  await page.goto(new globalThis.URL(hash, URL).toString());
  await page.waitForSelector("#who");
  const cdp = await context.newCDPSession(page);
  await cdp.send("Performance.enable");
  pages[name] = { page, cdp };
}

async function sample(name) {
  const { cdp, page } = pages[name];
  await cdp.send("HeapProfiler.collectGarbage").catch(() => {});
  const { metrics } = await cdp.send("Performance.getMetrics");
  const get = (k) => metrics.find((m) => m.name === k)?.value ?? 0;
  const listed = name === "events" ? await page.locator("#events li").count() : 0;
  return { heapMB: get("JSHeapUsedSize") / 1e6, nodes: get("Nodes"), listed };
}

let stop = false;
let applied = 0;
const churn = (async () => {
  while (!stop) {
    await api("ServiceManager", "ApplyService", {
      spec: { name: "soak", image: "hosting/sample:v1", replicas: 1 + (applied % 2) },
    }).catch((e) => console.error(`apply: ${e.message}`));
    ++applied;
    await new Promise((r) => setTimeout(r, 2000));
  }
})();

const rows = [];
console.log("| minute | events heap MB | events DOM nodes | events listed | services heap MB | services DOM nodes | hostd streams | applies |");
console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
let failed = "";
for (let minute = 1; minute <= MINUTES; ++minute) {
  await new Promise((r) => setTimeout(r, 60_000));
  const e = await sample("events");
  const s = await sample("services");
  const w = await watchers();
  rows.push({ e, s, w });
  console.log(
    `| ${minute} | ${e.heapMB.toFixed(2)} | ${e.nodes} | ${e.listed} | ${s.heapMB.toFixed(2)} | ${s.nodes} | ${w} | ${applied} |`,
  );
  if (w !== 1) failed ||= `minute ${minute}: hostd holds ${w} event streams, want 1`;
}
stop = true;
await churn;
await browser.close();

const base = rows[Math.max(0, Math.floor(rows.length / 5) - 1)];
const last = rows[rows.length - 1];
for (const view of ["e", "s"]) {
  const name = view === "e" ? "events" : "services";
  if (last[view].heapMB > 1.5 * base[view].heapMB) {
    failed ||= `${name} view's heap grew from ${base[view].heapMB.toFixed(2)} MB to ${last[view].heapMB.toFixed(2)} MB`;
  }
  if (last[view].nodes > 1.5 * base[view].nodes) {
    failed ||= `${name} view's DOM grew from ${base[view].nodes} to ${last[view].nodes} nodes`;
  }
}
if (failed) {
  console.error(`FAILED: ${failed}`);
  process.exit(1);
}
console.log(`soak passed: ${MINUTES} min, ${applied} applies`);
