// Console latency: how long each page's API calls take, and how long each page takes to show
// its data in chromium, against a console on a large database. Prints p50, p95 and max per
// request and per page. Used by latency.sh (see docs/PERFORMANCE.md); not part of the tests.
import { chromium } from "playwright-core";

const base = process.env.CONSOLE_URL;
const rounds = Number(process.env.ROUNDS || 200);
const pageRounds = Number(process.env.PAGE_ROUNDS || 20);
if (!base) throw new Error("set CONSOLE_URL");

function stats(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = p => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}
function fmt(name, st) {
  return `${name.padEnd(58)} n=${String(st.n).padStart(4)} p50=${st.p50.toFixed(1).padStart(6)} ms p95=${st.p95.toFixed(1).padStart(6)} ms max=${st.max.toFixed(1).padStart(6)} ms`;
}
async function get(path) {
  const t = performance.now();
  const r = await fetch(new URL(path, base));
  const body = await r.text();
  const ms = performance.now() - t;
  if (!r.ok) throw new Error(`${path}: ${r.status} ${body}`);
  return { ms, body };
}

// Ids to look at: an instance of each kind, and a cursor deep in the list.
const any = JSON.parse((await get("api/instances?limit=1")).body).instances[0];
const incident = JSON.parse((await get("api/instances?status=incident&limit=1")).body).instances[0];
let cursor = null;
for (let i = 0; i < 20; i++) cursor = JSON.parse((await get(`api/instances?limit=1000${cursor ? "&after=" + cursor : ""}`)).body).next;
const started = new Date(Date.parse(any.started_at) - 60_000).toISOString();
const process_ = any.process;

const requests = {
  "processes: api/processes": "api/processes",
  "diagram: api/processes/P/V (badges)": `api/processes/${process_}/${any.version}`,
  "diagram: api/processes/P/V/bpmn": `api/processes/${process_}/${any.version}/bpmn`,
  "instances: first page, no filter": "api/instances?limit=50",
  "instances: status=running": "api/instances?limit=50&status=running",
  "instances: status=incident": "api/instances?limit=50&status=incident",
  "instances: status=cancelled (none or few)": "api/instances?limit=50&status=cancelled",
  "instances: variables {region: north}": "api/instances?limit=50&variables=" + encodeURIComponent('{"region":"north"}'),
  "instances: variables {amount: 42} + running": "api/instances?limit=50&status=running&variables=" + encodeURIComponent('{"amount":42}'),
  "instances: step=await_pickup": "api/instances?limit=50&step=await_pickup",
  "instances: business key": "api/instances?limit=50&business_key=" + encodeURIComponent(any.business_key),
  "instances: started in the last minute of the seed": "api/instances?limit=50&started_after=" + encodeURIComponent(started),
  "instances: page 21 (cursor after 20,000)": `api/instances?limit=50&after=${cursor}`,
  "instance: api/instances/ID (completed)": `api/instances/${any.instance_id}`,
  "instance: api/instances/ID (incident)": `api/instances/${incident.instance_id}`,
  "incidents: api/incidents": "api/incidents?limit=50",
};
console.log(`API requests, ${rounds} each, one at a time:`);
const worst = [];
for (const [name, path] of Object.entries(requests)) {
  await get(path); // warm
  const ms = [];
  for (let i = 0; i < rounds; i++) ms.push((await get(path)).ms);
  const st = stats(ms);
  worst.push(st.p95);
  console.log(fmt(name, st));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
const pages = {
  "page: processes": ["#/", "#processes tr[data-process]"],
  "page: diagram with badges": [`#/process/${process_}/${any.version}`, ".badge[data-testid]"],
  "page: instances, no filter": ["#/instances", "#instances tr[data-instance]"],
  "page: instances, region north and running": ["#/instances?status=running&variables=" + encodeURIComponent('{"region":"north"}'), "#instances tr[data-instance]"],
  "page: instance with its diagram and history": [`#/instance/${incident.instance_id}`, "#history li"],
  "page: incidents": ["#/incidents", "#incident-list tr[data-instance]"],
};
console.log(`\nPages in chromium, ${pageRounds} loads each, from the navigation's start to its data shown (measured by the page):`);
for (const [name, [hash, selector]] of Object.entries(pages)) {
  const ms = [];
  for (let i = 0; i < pageRounds + 1; i++) {
    await page.goto("about:blank");
    await page.goto(new URL(hash, base).href);
    await page.locator(selector).first().waitFor({ timeout: 20_000 });
    const shown = await page.evaluate(() => window.longrunShownAt);
    if (i > 0) ms.push(shown); // the first load warms the cache
  }
  const st = stats(ms);
  worst.push(st.p95);
  console.log(fmt(name, st));
}
await browser.close();
console.log(`\nworst p95: ${Math.max(...worst).toFixed(1)} ms`);
