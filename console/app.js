// The longrun operations console: a page of hash routes over the JSON API (api/...), with no
// build step. Every value from the server is put in the page as text, never as HTML.
(function () {
  "use strict";
  const REFRESH = Math.max(1, Number(document.querySelector('meta[name="longrun-refresh"]').content) || 5) * 1000;
  const main = document.getElementById("main");
  let refreshTimer = null;
  let current = null; // the page shown: { refresh() }

  // ---- helpers ----
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === null || c === undefined || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  // Replace a node's children, skipping null, undefined and false; arrays are flattened.
  function fill(node, ...children) {
    node.replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false)
      .map(c => c instanceof Node ? c : document.createTextNode(String(c))));
  }
  function showError(message) {
    const box = document.getElementById("error");
    box.hidden = !message;
    box.textContent = message || "";
  }
  async function api(path, options) {
    const response = await fetch("api/" + path, options);
    const type = response.headers.get("content-type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) throw new Error((body && body.error) || response.statusText);
    return body;
  }
  async function post(path, body) {
    return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
  }
  function time(t) { return t ? new Date(t).toLocaleString() : ""; }
  // A duration after the instance's start, for the history: +0.35 s, +2 min 5 s, +3 d 4 h.
  function since(ms) {
    if (ms < 60_000) return `+${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
    const s = Math.floor(ms / 1000), d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
    if (d) return `+${d} d ${h} h`;
    if (h) return `+${h} h ${m} min`;
    return `+${m} min ${s % 60} s`;
  }
  function status(s) { return el("span", { class: "status " + s }, s); }
  // What to show as an instance's status: running ones with an incident or paused say so.
  function shownStatus(i) {
    const w = i.waiting_for || "";
    if (i.status === "running" && w.startsWith("incident")) return "incident";
    if (i.status === "running" && w.startsWith("paused")) return "paused";
    return i.status;
  }
  // Instance ids are UUIDv7: their start is the time, their end tells them apart.
  function shortId(id) { return "…" + id.slice(-12); }
  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
    return q.toString();
  }
  function table(headers, rows, attrs) {
    return el("table", attrs || {},
      el("thead", {}, el("tr", {}, headers.map(h => el("th", { class: h.num ? "num" : null }, h.label || h)))),
      el("tbody", {}, rows));
  }
  function lag(projection) {
    if (!projection || projection.behind === null) return "the activity projection has not run yet: counts are empty until an engine runs it";
    if (projection.behind >= 1000) return "counts are at least 1,000 events behind (is an engine running the activity projection?)";
    return projection.behind > 0 ? `counts are ${projection.behind} events behind` : "counts are current";
  }
  function setStatus(text) { document.getElementById("status").textContent = text; }

  // ---- the diagram ----
  // The viewer is loaded by the pages that draw a diagram, once.
  let viewerScript = null;
  function loadViewer() {
    if (window.BpmnJS) return Promise.resolve();
    if (!viewerScript) {
      viewerScript = new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "assets/vendor/bpmn-navigated-viewer.production.min.js";
        s.onload = resolve;
        s.onerror = () => { viewerScript = null; reject(new Error("could not load the diagram viewer")); };
        document.head.append(s);
      });
    }
    return viewerScript;
  }
  async function diagram(container, process, version) {
    const [xml] = await Promise.all([api(`processes/${encodeURIComponent(process)}/${version}/bpmn`), loadViewer()]);
    const viewer = new window.BpmnJS({ container });
    await viewer.importXML(xml);
    const canvas = viewer.get("canvas");
    canvas.zoom("fit-viewport");
    // Into a collapsed subprocess and back: fit what is shown now.
    viewer.get("eventBus").on("root.set", () => setTimeout(() => canvas.zoom("fit-viewport"), 0));
    const registry = viewer.get("elementRegistry");
    const byStep = new Map();
    for (const e of registry.getAll()) {
      if (e.type === "label" || e.type === "bpmn:SequenceFlow") continue;
      byStep.set(e.id.toLowerCase(), e.id);
    }
    return { viewer, elementOf: step => byStep.get(step) || null };
  }
  function drawBadges(d, counts) {
    const overlays = d.viewer.get("overlays");
    overlays.remove({ type: "lr-badges" });
    for (const c of counts) {
      const id = d.elementOf(c.step);
      if (!id) continue;
      const waiting = c.waiting - c.incidents;
      const html = el("div", { class: "badges", "data-step": c.step },
        waiting > 0 && el("span", { class: "badge waiting", title: "waiting here", "data-testid": `badge-${c.step}-waiting` }, waiting),
        c.incidents > 0 && el("span", { class: "badge incidents", title: "open incidents", "data-testid": `badge-${c.step}-incidents` }, c.incidents),
        c.completed > 0 && el("span", { class: "badge completed", title: "completed", "data-testid": `badge-${c.step}-completed` }, c.completed),
        c.cancelled > 0 && el("span", { class: "badge cancelled", title: "cancelled", "data-testid": `badge-${c.step}-cancelled` }, c.cancelled));
      overlays.add(id, "lr-badges", { position: { top: -10, left: -6 }, html });
    }
  }

  // ---- pages ----
  // What the other page scripts (tasks.js) use; they add their pages to `pages`.
  window.longrun = { el, fill, api, post, time, status, shortId, query, table, showError, setStatus, diagram, pages: {} };

  async function processesPage() {
    const body = el("tbody");
    const note = el("p", { class: "muted" });
    fill(main, el("h1", {}, "Processes"), note,
      el("table", { id: "processes" },
        el("thead", {}, el("tr", {}, ["Process", "Version", "Tags", "Deployed", "Running", "Incidents", "Completed", "Failed", "Cancelled", ""].map(h => el("th", {}, h)))),
        body));
    async function refresh() {
      const data = await api("processes");
      note.textContent = lag(data.projection);
      fill(body, ...data.versions.map(v => el("tr", { "data-process": v.process, "data-version": v.version },
        el("td", {}, el("a", { href: `#/process/${encodeURIComponent(v.process)}/${v.version}` }, v.process)),
        el("td", { class: "num" }, v.version),
        el("td", {}, v.tags),
        el("td", {}, time(v.deployed_at)),
        el("td", { class: "num" }, v.running),
        el("td", { class: "num" }, v.incidents > 0 ? el("a", { href: `#/incidents?process=${encodeURIComponent(v.process)}` }, v.incidents) : 0),
        el("td", { class: "num" }, v.completed),
        el("td", { class: "num" }, v.failed),
        el("td", { class: "num" }, v.cancelled),
        el("td", {}, el("a", { href: "#/instances?" + query({ process: v.process, version: v.version }) }, "instances")))));
      if (!data.versions.length) fill(body, el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No process is deployed.")));
    }
    await refresh();
    return { refresh };
  }

  async function processPage(process, version) {
    const container = el("div", { class: "diagram", id: "diagram" });
    const note = el("p", { class: "muted", id: "lag" });
    const steps = el("tbody");
    const title = el("h1", {}, `${process} v${version}`);
    fill(main, title,
      el("div", { class: "bar" },
        el("a", { href: "#/instances?" + query({ process, version }) }, "its instances"),
        el("span", { class: "legend muted" },
          el("span", { class: "badge waiting" }, "n"), "waiting",
          el("span", { class: "badge incidents" }, "n"), "incidents",
          el("span", { class: "badge completed" }, "n"), "completed",
          el("span", { class: "badge cancelled" }, "n"), "cancelled")),
      container, note,
      el("h2", {}, "Steps"),
      el("table", { id: "steps" },
        el("thead", {}, el("tr", {}, ["Step", "Kind", "Waiting", "Incidents", "Completed", "Cancelled"].map(h => el("th", {}, h)))),
        steps));
    const d = await diagram(container, process, version);
    async function refresh() {
      const data = await api(`processes/${encodeURIComponent(process)}/${version}`);
      const s = data.summary;
      title.textContent = s ? `${process} v${version}: ${s.running} running, ${s.incidents} incidents, ${s.completed} completed, ${s.failed} failed, ${s.cancelled} cancelled` : `${process} v${version}`;
      note.textContent = lag(data.projection);
      drawBadges(d, data.counts);
      const byStep = new Map(data.counts.map(c => [c.step, c]));
      fill(steps, ...data.steps.map(st => {
        const c = byStep.get(st.id) || { waiting: 0, incidents: 0, completed: 0, cancelled: 0 };
        return el("tr", { "data-step": st.id },
          el("td", {}, el("a", { href: "#/instances?" + query({ process, version, step: st.id }) }, st.id)), el("td", {}, st.kind),
          el("td", { class: "num" }, c.waiting - c.incidents), el("td", { class: "num" }, c.incidents),
          el("td", { class: "num" }, c.completed), el("td", { class: "num" }, c.cancelled));
      }));
    }
    await refresh();
    return { refresh };
  }

  const FILTERS = ["process", "version", "status", "business_key", "variables", "step", "started_after", "started_before"];

  async function instancesPage(params) {
    const form = el("form", { class: "filters", id: "filters" },
      el("label", {}, "Process", el("input", { name: "process", value: params.get("process") || "", size: 12 })),
      el("label", {}, "Version", el("input", { name: "version", value: params.get("version") || "", size: 4 })),
      el("label", {}, "Status", el("select", { name: "status" },
        ["", "running", "incident", "paused", "completed", "failed", "cancelled"].map(s =>
          el("option", { value: s, selected: (params.get("status") || "") === s }, s || "any")))),
      el("label", {}, "Business key", el("input", { name: "business_key", value: params.get("business_key") || "", size: 16 })),
      el("label", {}, "At step", el("input", { name: "step", value: params.get("step") || "", size: 14 })),
      el("label", {}, "Variables contain (JSON)", el("input", { name: "variables", value: params.get("variables") || "", placeholder: '{"region": "north"}' })),
      el("label", {}, "Started after", el("input", { name: "started_after", type: "datetime-local", step: 1, value: local(params.get("started_after")) })),
      el("label", {}, "Started before", el("input", { name: "started_before", type: "datetime-local", step: 1, value: local(params.get("started_before")) })),
      el("button", { class: "primary", type: "submit" }, "Filter"),
      el("button", { type: "button", onclick: () => { location.hash = "#/instances"; } }, "Clear"));
    form.addEventListener("submit", ev => {
      ev.preventDefault();
      const f = new FormData(form);
      const q = {};
      for (const k of FILTERS) {
        let v = (f.get(k) || "").trim();
        if (v && k.startsWith("started_")) v = new Date(v).toISOString();
        q[k] = v;
      }
      location.hash = "#/instances?" + query(q);
    });
    const filter = {};
    for (const k of FILTERS) if (params.get(k)) filter[k] = params.get(k);
    const body = el("tbody");
    const pager = el("div", { class: "bar" });
    const batch = el("div", { class: "bar", id: "batch" },
      el("span", { class: "muted" }, "On every instance matching the filter:"),
      ["retry", "pause", "resume", "cancel"].map(a => el("button", { class: a === "cancel" ? "danger" : null, type: "button", "data-batch": a, onclick: () => runBatch(a, filter) }, a[0].toUpperCase() + a.slice(1) + " all")));
    fill(main, el("h1", {}, "Instances"), form, batch,
      el("table", { id: "instances" },
        el("thead", {}, el("tr", {}, ["Instance", "Process", "Business key", "Status", "Where", "Started", "Updated"].map(h => el("th", {}, h)))),
        body), pager);
    let after = params.get("after") || "";
    async function refresh() {
      const page = await api("instances?" + query({ ...filter, after, limit: 50 }));
      fill(body, ...page.instances.map(i => el("tr", { "data-instance": i.instance_id },
        el("td", {}, el("a", { href: `#/instance/${i.instance_id}` }, el("code", { title: i.instance_id }, shortId(i.instance_id)))),
        el("td", {}, `${i.process} v${i.version}`),
        el("td", {}, i.business_key),
        el("td", {}, status(shownStatus(i))),
        el("td", {}, i.waiting_for || i.current_step || ""),
        el("td", {}, time(i.started_at)),
        el("td", {}, time(i.updated_at)))));
      if (!page.instances.length) fill(body, el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No instance matches.")));
      fill(pager, 
        after ? el("button", { type: "button", onclick: () => { location.hash = "#/instances?" + query(filter); } }, "First page") : null,
        page.next ? el("button", { type: "button", id: "next", onclick: () => { location.hash = "#/instances?" + query({ ...filter, after: page.next }); } }, "Next page") : null,
        el("span", { class: "muted", id: "shown" }, `${page.instances.length} shown${page.next ? ", more on the next pages" : ""}`));
    }
    await refresh();
    return { refresh };
  }
  function local(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    if (isNaN(d)) return "";
    const pad = n => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }

  // Ask what an action needs (and for confirmation); null when the user says no.
  function askAction(action, what) {
    if (action === "cancel") {
      const reason = window.prompt(`Cancel ${what}? Completed steps that declare a compensation are undone. Reason:`, "");
      if (reason === null) return null;
      if (!reason.trim()) { showError("A cancel needs a reason."); return null; }
      return { reason };
    }
    if (action === "retry") {
      const vars = window.prompt(`Retry ${what}? Variables to set first (a JSON object, or empty):`, "");
      if (vars === null) return null;
      if (!vars.trim()) return {};
      try { return { variables: JSON.parse(vars) }; } catch (e) { showError("Not JSON: " + e.message); return null; }
    }
    return window.confirm(`${action[0].toUpperCase() + action.slice(1)} ${what}?`) ? {} : null;
  }

  async function runBatch(action, filter) {
    const probe = await api("instances?" + query({ ...filter, limit: 1000 }));
    const n = probe.instances.length;
    if (!n) { showError("No instance matches the filter."); return; }
    if (probe.next) { showError("More than 1000 instances match: narrow the filter first."); return; }
    const what = `${n} matching instance${n === 1 ? "" : "s"}`;
    const body = askAction(action, what);
    if (!body) return;
    // The server refuses the batch if the filter matches more by now than were shown.
    const result = await post(`batch/${action}`, { filter: batchFilter(filter), expected: n, ...body });
    const failed = result.failed.length ? `; ${result.failed.length} refused: ${result.failed.slice(0, 3).map(f => f.error).join("; ")}` : "";
    setStatus(`${action}: ${result.done} of ${result.matched} done${failed}`);
    if (failed) showError(`${action}: ${result.failed.length} refused` + failed);
    await current.refresh();
  }
  function batchFilter(f) {
    const out = {};
    for (const [k, v] of Object.entries(f)) {
      if (k === "version") out[k] = Number(v);
      else if (k === "variables") out[k] = JSON.parse(v);
      else out[k] = v;
    }
    return out;
  }

  async function instancePage(id) {
    const title = el("h1", {}, "Instance ", el("code", {}, id));
    const actions = el("div", { class: "bar", id: "actions" });
    const facts = el("dl", { class: "facts" });
    const container = el("div", { class: "diagram", id: "diagram" });
    const vars = el("pre", { id: "variables" });
    const waits = el("div", { id: "waiting" });
    const incidents = el("div", { id: "incidents" });
    const history = el("ol", { class: "timeline", id: "history" });
    fill(main, title, actions, facts, el("h2", {}, "Where it is"), container,
      el("div", { class: "grid" },
        el("div", {}, el("h2", {}, "Variables"), vars),
        el("div", {}, el("h2", {}, "Incidents"), incidents, el("h2", {}, "Waits, jobs and timers"), waits)),
      el("h2", {}, "History"), history);
    let d = null;
    async function refresh() {
      const data = await api(`instances/${id}`);
      const i = data.instance;
      if (!d) d = await diagram(container, i.process, i.version);
      const canvas = d.viewer.get("canvas");
      for (const e of d.viewer.get("elementRegistry").getAll()) { canvas.removeMarker(e.id, "lr-current"); canvas.removeMarker(e.id, "lr-incident"); }
      const incidentSteps = new Set(data.incidents.map(x => x.step));
      for (const step of data.positions) {
        const e = d.elementOf(step);
        if (e) canvas.addMarker(e, incidentSteps.has(step) ? "lr-incident" : "lr-current");
      }
      const paused = i.status === "running" && (i.waiting_for || "").startsWith("paused");
      const shown = data.incidents.length && i.status === "running" ? "incident" : shownStatus(i);
      fill(facts, 
        el("dt", {}, "Process"), el("dd", {}, el("a", { href: `#/process/${encodeURIComponent(i.process)}/${i.version}` }, `${i.process} v${i.version}`)),
        el("dt", {}, "Business key"), el("dd", {}, i.business_key),
        el("dt", {}, "Status"), el("dd", { id: "instance-status" }, status(shown)),
        el("dt", {}, "Where"), el("dd", {}, data.positions.join(", ") + (i.waiting_for ? ` (${i.waiting_for})` : "")),
        el("dt", {}, "Started"), el("dd", {}, time(i.started_at)),
        el("dt", {}, "Updated"), el("dd", {}, time(i.updated_at)),
        i.ended_at ? [el("dt", {}, "Ended"), el("dd", {}, time(i.ended_at))] : null,
        i.error ? [el("dt", {}, "Error"), el("dd", {}, i.error)] : null);
      const running = i.status === "running";
      fill(actions, 
        running && data.incidents.length ? el("button", { class: "primary", "data-action": "retry", onclick: () => act("retry") }, "Retry") : null,
        running && !paused ? el("button", { "data-action": "pause", onclick: () => act("pause") }, "Pause") : null,
        running && paused ? el("button", { "data-action": "resume", onclick: () => act("resume") }, "Resume") : null,
        running ? el("button", { class: "danger", "data-action": "cancel", onclick: () => act("cancel") }, "Cancel") : null);
      vars.textContent = JSON.stringify(i.variables, null, 2);
      fill(incidents, data.incidents.length
        ? table(["Step", "Error", "Attempts", "Since"], data.incidents.map(x => el("tr", {}, el("td", {}, x.step), el("td", {}, x.error), el("td", { class: "num" }, x.attempts), el("td", {}, time(x.at)))))
        : el("p", { class: "muted" }, "None."));
      const rows = [
        ...data.waiting.map(w => w.kind === "job"
          ? el("tr", {}, el("td", {}, "job"), el("td", {}, w.step), el("td", {}, `handler ${w.handler}, ${w.attempts} claims${w.lease_owner ? ", held by " + w.lease_owner : ""}`))
          : el("tr", {}, el("td", {}, "message"), el("td", {}, w.step), el("td", {}, `${w.name} key ${w.key} since ${time(w.since)}`))),
        ...data.timers.map(t => el("tr", {}, el("td", {}, "timer"), el("td", {}, t.step), el("td", {}, `${t.kind} due ${time(t.due_at)}`)))];
      fill(waits, rows.length ? table(["Kind", "Step", "What"], rows) : el("p", { class: "muted" }, "Nothing."));
      const start = data.history.length ? Date.parse(data.history[0].at) : 0;
      fill(history, ...data.history.map(h => el("li", { "data-type": h.type },
        el("span", { class: "muted" }, h.seq), el("span", { class: "type" }, h.type),
        el("span", { class: "muted", title: time(h.at) }, since(Date.parse(h.at) - start)), el("span", {}, h.text))));
    }
    async function act(action) {
      const body = askAction(action, `instance ${id}`);
      if (!body) return;
      await post(`instances/${id}/${action}`, body);
      setStatus(`${action}: done`);
      await refresh();
    }
    await refresh();
    return { refresh };
  }

  async function incidentsPage(params) {
    const body = el("tbody");
    const pager = el("div", { class: "bar" });
    const process = params.get("process") || "";
    let after = params.get("after") || "";
    fill(main, el("h1", {}, "Open incidents" + (process ? ` of ${process}` : "")),
      el("table", { id: "incident-list" },
        el("thead", {}, el("tr", {}, ["Instance", "Process", "Business key", "Step", "Error", "Attempts", "Since", ""].map(h => el("th", {}, h)))),
        body), pager);
    async function refresh() {
      const page = await api("incidents?" + query({ process, after, limit: 50 }));
      fill(body, ...page.incidents.map(x => el("tr", { "data-instance": x.instance_id, "data-key": x.business_key },
        el("td", {}, el("a", { href: `#/instance/${x.instance_id}` }, el("code", { title: x.instance_id }, shortId(x.instance_id)))),
        el("td", {}, `${x.process} v${x.version}`),
        el("td", {}, x.business_key), el("td", {}, x.step), el("td", {}, x.error),
        el("td", { class: "num" }, x.attempts), el("td", {}, time(x.at)),
        el("td", {}, el("button", { "data-action": "retry", onclick: async () => {
          const b = askAction("retry", `the incident of ${x.business_key} at ${x.step}`);
          if (!b) return;
          await post(`instances/${x.instance_id}/retry`, b);
          setStatus("retry: done");
          await refresh();
        } }, "Retry")))));
      if (!page.incidents.length) fill(body, el("tr", {}, el("td", { colspan: 8, class: "muted" }, "No open incident.")));
      fill(pager, page.next ? el("button", { type: "button", onclick: () => { location.hash = "#/incidents?" + query({ process, after: page.next }); } }, "Next page") : null);
    }
    await refresh();
    return { refresh };
  }

  // ---- routing and refresh ----
  async function route() {
    clearTimeout(refreshTimer);
    showError("");
    const hash = location.hash.replace(/^#/, "") || "/";
    const [path, q] = hash.split("?");
    const params = new URLSearchParams(q || "");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const section = parts[0] || "processes";
    const navOf = { process: "processes", instance: "instances", task: "tasks" };
    for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.nav === (navOf[section] || section));
    try {
      current = null;
      if (section === "processes") current = await processesPage();
      else if (section === "process" && parts.length === 3) current = await processPage(parts[1], Number(parts[2]));
      else if (section === "instances") current = await instancesPage(params);
      else if (section === "instance" && parts[1]) current = await instancePage(parts[1]);
      else if (section === "incidents") current = await incidentsPage(params);
      else if (window.longrun.pages[section]) current = await window.longrun.pages[section](parts, params);
      else fill(main, el("p", {}, "No such page. ", el("a", { href: "#/" }, "Processes")));
      document.body.dataset.page = section;
      // When the page showed its data, in ms from the navigation's start (read by the
      // latency measurement, tests/browser/latency.mjs).
      window.longrunShownAt = performance.now();
      setStatus("updated " + new Date().toLocaleTimeString());
    } catch (e) {
      showError(e.message);
    }
    schedule();
  }
  function schedule() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(async () => {
      // Not while the user types in a filter.
      const typing = document.activeElement && ["INPUT", "SELECT"].includes(document.activeElement.tagName);
      if (current && !typing && !document.hidden) {
        try { await current.refresh(); setStatus("updated " + new Date().toLocaleTimeString()); showError(""); }
        catch (e) { showError(e.message); }
      }
      schedule();
    }, REFRESH);
  }
  window.addEventListener("hashchange", route);
  window.addEventListener("unhandledrejection", e => showError(e.reason && e.reason.message || String(e.reason)));
  // After the other page scripts have run (they come after this one in the page).
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", route);
  else route();
})();
