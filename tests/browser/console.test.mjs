// End-to-end tests of the longrun console: a real console (examples/console.rs) on a real
// database, driven in Debian's chromium by playwright-core. Run by run.sh, which starts the
// example with `--seed $SEED` and passes its address in CONSOLE_URL.
//
// The seed places SEED orders (a multiple of 10): every tenth (i % 10 == 3) has an expired
// card (an incident at charge_card), i % 10 in 0..7 otherwise are picked up (completed), the
// rest wait at await_pickup. Even i are in region north, odd in south.
import { chromium } from "playwright-core";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";

const base = process.env.CONSOLE_URL;
const seed = Number(process.env.SEED || 200);
const shots = process.env.SCREENSHOTS || "";
if (!base) throw new Error("set CONSOLE_URL (run.sh does)");

const expected = {
  incidents: seed / 10,
  completed: (seed / 10) * 6,
  waiting: (seed / 10) * 3,
  northWaiting: seed / 10, // i % 10 == 8
};

// A guard against a hang, not a timing assertion.
const WAIT = 20_000;

function assert(cond, message) {
  if (!cond) throw new Error("assertion failed: " + message);
}
function eq(actual, want, what) {
  assert(actual === want, `${what}: expected ${JSON.stringify(want)}, got ${JSON.stringify(actual)}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
const pageErrors = [];
page.on("pageerror", e => pageErrors.push(e.message));
// The answers to the page's prompts and confirmations, in order.
let answers = [];
page.on("dialog", async d => {
  const a = answers.shift();
  if (a === undefined) { await d.dismiss(); return; }
  await d.accept(a);
});

async function go(hash) {
  await page.goto(new URL(hash, base).href);
  await page.waitForFunction(() => document.body.dataset.page !== undefined, null, { timeout: WAIT });
}
async function shot(name, fullPage = false) {
  if (!shots) return;
  mkdirSync(shots, { recursive: true });
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage });
}
async function badge(step, kind) {
  const b = page.locator(`[data-testid="badge-${step}-${kind}"]`);
  if (await b.count() === 0) return 0;
  return Number(await b.textContent());
}
async function rows(tableId) {
  return page.locator(`#${tableId} tbody tr[data-instance]`).count();
}

const tests = [];
function test(name, fn) { tests.push({ name, fn }); }

test("the diagram shows the right badges after the example runs", async () => {
  await go("#/");
  await page.locator('#processes tr[data-process="delivery"]').waitFor({ timeout: WAIT });
  await shot("processes");
  await go("#/process/delivery/1");
  await page.locator('[data-testid="badge-charge_card-incidents"]').waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector(".djs-container svg") !== null, null, { timeout: WAIT });
  eq(await badge("charge_card", "incidents"), expected.incidents, "incidents at charge_card");
  eq(await badge("await_pickup", "waiting"), expected.waiting, "waiting at await_pickup");
  eq(await badge("delivered", "completed"), expected.completed, "completed at delivered");
  eq(await badge("reserve_stock", "completed"), seed, "completed at reserve_stock");
  eq(await badge("await_pickup", "completed"), expected.completed, "completed at await_pickup");
  // The bpmn.io watermark stays, as its license asks.
  assert(await page.locator(".bjs-powered-by").count() === 1, "the bpmn.io watermark is shown");
  await shot("diagram");
});

test("a subprocess and a multi-instance step show their counts, inside too", async () => {
  await go("#/process/picking/1");
  await page.locator('[data-testid="badge-pack-waiting"]').waitFor({ timeout: WAIT });
  eq(await badge("pack", "waiting"), seed / 10, "waiting inside the subprocess pack");
  await shot("subprocess");
  // Into the collapsed subprocess: its steps; a multi-instance step counts once per instance
  // (its elements have activity rows of their own).
  await page.locator(".bjs-drilldown").first().click();
  await page.locator('[data-testid="badge-pick-completed"]').waitFor({ state: "visible", timeout: WAIT });
  eq(await badge("pick", "completed"), seed / 10, "completed at pick");
  eq(await badge("await_packing", "waiting"), seed / 10, "waiting at await_packing");
  assert(await page.locator('[data-element-id="pick"] .djs-visual path').count() > 0, "pick is drawn");
  await shot("subprocess-inside");
});

test("the flows page counts the traces per stage and shows one trace's timeline", async () => {
  // The example is its own central monitor: delivery's milestones reserved, charged, delivered.
  await go("#/flows");
  await page.locator('[data-testid="stage-delivery-delivered"]').waitFor({ timeout: WAIT });
  const count = async m => Number(await page.locator(`[data-testid="stage-delivery-${m}"]`).textContent());
  eq(await count("reserved"), expected.incidents, "at reserved (their charge has an incident)");
  eq(await count("charged"), expected.waiting, "at charged (waiting for pickup)");
  eq(await count("delivered"), expected.completed, "delivered");
  assert((await page.locator('[data-testid="arrow-delivery-delivered"]').textContent()).includes("p50"), "durations on the way to delivered");
  // A delivered order's timeline, with links into its context's console.
  const key = await page.evaluate(async () => {
    const r = await fetch("api/instances?process=delivery&step=delivered&limit=1");
    const body = await r.json();
    return (body.instances || body)[0].business_key;
  });
  await page.locator('#trace-search input[name="trace"]').fill(key);
  await page.locator('#trace-search button[type="submit"]').click();
  await page.locator("#timeline-table tbody tr").first().waitFor({ timeout: WAIT });
  const milestones = await page.locator("#timeline-table tbody tr").evaluateAll(rows => rows.map(r => r.dataset.milestone));
  eq(milestones.join(","), "reserved,charged,delivered", "the order's milestones in order");
  await shot("flows");
  const href = await page.locator('#timeline-table a[data-context="orders"]').first().getAttribute("href");
  assert(/#\/instance\/[0-9a-f-]{36}$/.test(href), "a link into the context's console: " + href);
});

test("a filter narrows the list", async () => {
  await go("#/instances");
  await page.locator("#instances tbody tr[data-instance]").first().waitFor({ timeout: WAIT });
  const all = await rows("instances");
  eq(all, 50, "a first page of 50");
  assert(await page.locator("#next").count() === 1, "more pages");
  await page.fill('input[name="variables"]', '{"region": "north"}');
  await page.selectOption('select[name="status"]', "running");
  await page.fill('input[name="step"]', "await_pickup");
  await page.click('#filters button[type="submit"]');
  await page.waitForFunction(n => document.querySelectorAll("#instances tbody tr[data-instance]").length === n,
    expected.northWaiting, { timeout: WAIT });
  const statuses = await page.locator("#instances tbody tr[data-instance] .status").allTextContents();
  assert(statuses.every(s => s === "running"), "every row is running: " + statuses.join(","));
  assert(await page.locator("#next").count() === 0, "one page");
  assert(page.url().includes("region"), "the filter is in the address");
  await shot("instances");
  // A filter that matches nothing says so.
  await page.selectOption('select[name="status"]', "incident");
  await page.fill('input[name="step"]', "");
  await page.click('#filters button[type="submit"]');
  await page.getByText("No instance matches.").waitFor({ timeout: WAIT });
  // Bad input is refused with a message, not a blank page.
  await page.fill('input[name="variables"]', '{"region": ');
  await page.click('#filters button[type="submit"]');
  await page.locator("#error:not([hidden])").waitFor({ timeout: WAIT });
  assert((await page.locator("#error").textContent()).includes("variables"), "the error names the field");
});

test("an incident is retried from the page and disappears", async () => {
  await go("#/incidents");
  await page.locator("#incident-list tbody tr[data-instance]").first().waitFor({ timeout: WAIT });
  eq(await rows("incident-list"), expected.incidents, "incidents listed");
  await shot("incidents");
  const row = page.locator("#incident-list tbody tr[data-instance]").first();
  const id = await row.getAttribute("data-instance");
  answers = ['{"card": "renewed"}'];
  await row.locator('button[data-action="retry"]').click();
  await page.locator(`#incident-list tr[data-instance="${id}"]`).waitFor({ state: "detached", timeout: WAIT });
  eq(await rows("incident-list"), expected.incidents - 1, "one incident fewer");
  // It went on: charged, now waiting for the courier; the history says who retried it.
  await go(`#/instance/${id}`);
  await page.waitForFunction(() => (document.querySelector("#history") || {}).textContent?.includes("JobCompleted"), null, { timeout: WAIT });
  let history = await page.locator("#history").textContent();
  assert(history.includes("IncidentResolved"), "the retry is in the history");
  assert(history.includes("by console: demo-operator"), "with who asked: " + history);
  await page.waitForFunction(() => document.querySelector("#instance-status")?.textContent === "running", null, { timeout: WAIT });
  await shot("instance", true);
});

test("an instance is paused and resumed from its page", async () => {
  // A south order waiting for its pickup (the batch test below cancels only north ones).
  await go("#/instances?" + new URLSearchParams({ status: "running", step: "await_pickup", variables: '{"region": "south"}' }));
  await page.locator("#instances tbody tr[data-instance]").first().waitFor({ timeout: WAIT });
  const id = await page.locator("#instances tbody tr[data-instance]").first().getAttribute("data-instance");
  await go(`#/instance/${id}`);
  answers = [""]; // the confirmation
  await page.click('button[data-action="pause"]');
  await page.waitForFunction(() => document.querySelector("#instance-status")?.textContent === "paused", null, { timeout: WAIT });
  const paused = await page.locator('#history li[data-type="InstancePaused"]').textContent();
  assert(paused.includes("by console: demo-operator"), "who paused it: " + paused);
  assert(await page.locator('button[data-action="pause"]').count() === 0, "no pause button while paused");
  answers = [""];
  await page.click('button[data-action="resume"]');
  await page.waitForFunction(() => document.querySelector("#instance-status")?.textContent === "running", null, { timeout: WAIT });
  await page.locator('#history li[data-type="InstanceResumed"]').waitFor({ timeout: WAIT });
  // A dismissed confirmation does nothing.
  answers = [];
  await page.click('button[data-action="pause"]');
  await go("#/");
  await go(`#/instance/${id}`);
  await page.locator('#history li[data-type="InstanceResumed"]').waitFor({ timeout: WAIT });
  eq(await page.locator('#history li[data-type="InstancePaused"]').count(), 1, "pauses after a dismissed confirmation");
  eq(await page.locator("#instance-status").textContent(), "running", "status after a dismissed confirmation");
});

test("a batch cancel compensates", async () => {
  const filter = "#/instances?" + new URLSearchParams({ status: "running", step: "await_pickup", variables: '{"region": "north"}' });
  await go(filter);
  await page.waitForFunction(n => document.querySelectorAll("#instances tbody tr[data-instance]").length === n,
    expected.northWaiting, { timeout: WAIT });
  answers = ["customer called (browser test)"];
  await page.click('button[data-batch="cancel"]');
  await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("cancel:"), null, { timeout: WAIT });
  const said = await page.locator("#status").textContent();
  eq(said, `cancel: ${expected.northWaiting} of ${expected.northWaiting} done`, "the batch result");
  // Each ends cancelled after its charge is refunded and its stock released.
  await go("#/instances?" + new URLSearchParams({ status: "cancelled", variables: '{"region": "north"}' }));
  await page.waitForFunction(n => document.querySelectorAll("#instances tbody tr[data-instance]").length === n,
    expected.northWaiting, { timeout: WAIT });
  const id = await page.locator("#instances tbody tr[data-instance]").first().getAttribute("data-instance");
  await go(`#/instance/${id}`);
  await page.locator('#history li[data-type="InstanceCancelled"]').waitFor({ timeout: WAIT });
  const compensated = await page.locator('#history li[data-type="StepCompensated"]').allTextContents();
  eq(compensated.length, 2, "two steps compensated");
  assert(compensated[0].includes("charge_card") && compensated[1].includes("reserve_stock"), "newest first: " + compensated.join(" | "));
  const started = await page.locator('#history li[data-type="CompensationStarted"]').textContent();
  assert(started.includes("customer called (browser test)") && started.includes("by console: demo-operator"), "reason and who: " + started);
  // The diagram counts them.
  await go("#/process/delivery/1");
  await page.waitForFunction(n => Number(document.querySelector('[data-testid="badge-await_pickup-cancelled"]')?.textContent) === n,
    expected.northWaiting, { timeout: WAIT });
});

test("a clerk claims and completes a task from the task list", async () => {
  const reviews = seed / 10;
  await page.setExtraHTTPHeaders({ "x-demo-user": "ann", "x-demo-groups": "sales,support" });
  await go("#/tasks");
  await page.locator("#tasks tbody tr[data-task]").first().waitFor({ timeout: WAIT });
  eq(await page.locator("#me").textContent(), "You are ann, in sales, support.", "who the page says you are");
  await page.waitForFunction(n => document.querySelectorAll("#tasks tbody tr[data-task]").length === n,
    reviews, { timeout: WAIT }).catch(() => {});
  eq(await page.locator("#tasks tbody tr[data-task]").count(), reviews, "the group's tasks");
  // Overdue first: the first half are overdue.
  const dues = await page.locator("#tasks tbody tr[data-task] td:nth-child(8)").allTextContents();
  eq(dues.filter(d => d.includes("overdue")).length, reviews / 2, "overdue tasks");
  assert(dues.slice(0, reviews / 2).every(d => d.includes("overdue")), "overdue ones first: " + dues.join(" | "));
  await shot("tasks");
  // Claim from the list; it shows in "Mine".
  const row = page.locator("#tasks tbody tr[data-task]").first();
  const id = await row.getAttribute("data-task");
  const key = await row.getAttribute("data-key");
  await row.locator('button[data-action="claim"]').click();
  await page.waitForFunction(id => document.querySelector(`#tasks tr[data-task="${id}"] td:nth-child(5)`)?.textContent === "ann",
    id, { timeout: WAIT });
  await go("#/tasks?view=mine");
  await page.locator(`#tasks tr[data-task="${id}"]`).waitFor({ timeout: WAIT });
  // Counted once the list settled (the page refreshes itself and may be between two renders).
  await page.waitForFunction(() => document.querySelectorAll("#tasks tbody tr[data-task]").length === 1,
    null, { timeout: WAIT }).catch(() => {});
  eq(await page.locator("#tasks tbody tr[data-task]").count(), 1, "ann's tasks");
  // Another clerk sees it held: no completion, only taking it over.
  await page.setExtraHTTPHeaders({ "x-demo-user": "bob", "x-demo-groups": "sales" });
  await go(`#/task/${id}`);
  await page.locator('button[data-action="take"]').waitFor({ timeout: WAIT });
  assert(await page.locator('#complete button[type="submit"]').isDisabled(), "bob cannot complete ann's task");
  // Ann completes it with the form built from its fields.
  await page.setExtraHTTPHeaders({ "x-demo-user": "ann", "x-demo-groups": "sales" });
  await go("#/tasks"); // the same address again would not load the page again
  await go(`#/task/${id}`);
  await page.locator('#complete input[name="approved"]').waitFor({ timeout: WAIT });
  await page.waitForFunction(() => document.querySelector(".djs-element.lr-current") !== null, null, { timeout: WAIT });
  eq(await page.locator("#assignee").textContent(), "ann", "held by");
  await page.check('#complete input[name="approved"]');
  await page.fill('#complete input[name="note"]', "refund approved by phone");
  await shot("task", true);
  answers = [""]; // the confirmation
  await page.click('#complete button[type="submit"]');
  await page.getByText("is not open").waitFor({ timeout: WAIT });
  // The instance went on and its history says who completed the task.
  await go("#/instances?" + new URLSearchParams({ business_key: key }));
  await page.locator("#instances tbody tr[data-instance]").first().waitFor({ timeout: WAIT });
  const instance = await page.locator("#instances tbody tr[data-instance]").first().getAttribute("data-instance");
  await go(`#/instance/${instance}`);
  const done = await page.locator('#history li[data-type="TaskCompleted"]').textContent();
  assert(done.includes("by ann") && done.includes("refund approved by phone"), "who and what: " + done);
  await page.waitForFunction(() => document.querySelector("#instance-status")?.textContent === "completed", null, { timeout: WAIT });
  await page.setExtraHTTPHeaders({});
});

test("every element's export opens in the modeler's viewer without a warning", async () => {
  // EXPORTS: BPMN that longrun wrote from the model of each element fixture (run.sh makes
  // them with `longrun convert`), imported by bpmn-js as the Camunda Modeler would.
  const dir = process.env.EXPORTS;
  if (!dir) return;
  const files = readdirSync(dir).filter(f => f.endsWith(".bpmn")).sort();
  assert(files.length >= 10, "exports: " + files.join(", "));
  await go("#/process/delivery/1");
  await page.waitForFunction(() => window.BpmnJS !== undefined, null, { timeout: WAIT });
  for (const f of files) {
    const xml = readFileSync(`${dir}/${f}`, "utf8");
    const r = await page.evaluate(async xml => {
      const container = document.createElement("div");
      container.style.width = "1000px";
      container.style.height = "600px";
      document.body.append(container);
      const viewer = new window.BpmnJS({ container });
      try {
        const { warnings } = await viewer.importXML(xml);
        const shapes = viewer.get("elementRegistry").filter(e => e.type !== "label").length;
        return { warnings: warnings.map(w => w.message), shapes };
      } catch (e) {
        return { error: e.message };
      } finally {
        viewer.destroy();
        container.remove();
      }
    }, xml);
    assert(!r.error, `${f}: ${r.error}`);
    eq(r.warnings.length, 0, `${f} warnings: ${(r.warnings || []).join("; ")}`);
    assert(r.shapes > 3, `${f}: ${r.shapes} shapes drawn`);
  }
});

let failed = 0;
for (const t of tests) {
  try {
    await t.fn();
    console.log(`ok - ${t.name}`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${t.name}\n  ${e.message.split("\n").join("\n  ")}`);
    await page.screenshot({ path: `/tmp/longrun-console-failure-${tests.indexOf(t)}.png` }).catch(() => {});
  }
}
if (pageErrors.length) {
  failed++;
  console.log("not ok - the page raised errors:\n  " + pageErrors.join("\n  "));
}
await browser.close();
console.log(`${tests.length - failed} of ${tests.length} passed`);
process.exit(failed ? 1 : 0);
