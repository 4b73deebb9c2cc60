// The flows page of the longrun console: the coarse view across contexts that the central
// monitor keeps (each flow's stages with how many traces are at each now, how long the way
// from one stage to the next takes, the stuck traces), and a search by trace key showing one
// trace's timeline with links into each context's own console. Every value from the server is
// put in the page as text, never as HTML.
(function () {
  "use strict";
  const L = window.longrun;
  const { el, fill, api, time, query } = L;

  function seconds(s) {
    if (s === null || s === undefined) return "";
    const n = Number(s);
    if (n < 120) return n.toFixed(n < 10 ? 1 : 0) + " s";
    if (n < 7200) return (n / 60).toFixed(0) + " min";
    if (n < 172800) return (n / 3600).toFixed(1) + " h";
    return (n / 86400).toFixed(1) + " d";
  }

  // A flow as a chain of stage boxes, each with its count, the durations on the arrows.
  function chain(flow, stages, durations) {
    const parts = [];
    stages.forEach((s, i) => {
      if (i > 0) {
        const d = durations.find(d => d.to_milestone === s.milestone);
        parts.push(el("div", { class: "arrow", "data-testid": `arrow-${flow}-${s.milestone}` },
          el("span", {}, "→"),
          d ? el("small", { class: "muted" }, `p50 ${seconds(d.p50_seconds)} · p95 ${seconds(d.p95_seconds)}`) : null));
      }
      parts.push(el("div", { class: "stage", "data-stage": s.milestone },
        el("div", { class: "name" }, s.milestone),
        el("div", { class: "count", "data-testid": `stage-${flow}-${s.milestone}` }, String(s.traces))));
    });
    return el("div", { class: "flow", "data-flow": flow }, parts);
  }

  async function flowsPage(parts, params) {
    const key = params.get("trace") || "";
    const flowsBox = el("div", { id: "flows" });
    const stuckBody = el("tbody");
    const search = el("form", { id: "trace-search", class: "bar", onsubmit: e => {
      e.preventDefault();
      location.hash = "#/flows?" + query({ trace: e.target.elements.trace.value.trim() });
    } }, el("input", { name: "trace", placeholder: "trace key, e.g. an order id", value: key }),
      el("button", { type: "submit" }, "Show timeline"));
    const timeline = el("div", { id: "timeline" });
    fill(main(), el("h1", {}, "Flows across contexts"), flowsBox, search, timeline,
      el("h2", {}, "Stuck past a stage's limit"),
      el("table", { id: "stuck" }, el("thead", {}, el("tr", {},
        ["Flow", "Trace key", "At stage", "Context", "Since", "Waiting"].map(h => el("th", {}, h)))), stuckBody));

    async function showTrace(contexts) {
      if (!key) { fill(timeline); return; }
      const t = await api("flows/trace/" + encodeURIComponent(key));
      if (!t.milestones.length) { fill(timeline, el("p", { class: "muted" }, `No milestone of ${key} yet.`)); return; }
      fill(timeline, el("h2", {}, `Timeline of ${key}`), el("table", { id: "timeline-table" },
        el("thead", {}, el("tr", {}, ["When", "Context", "Process", "Milestone", "Instance"].map(h => el("th", {}, h)))),
        el("tbody", {}, t.milestones.map(m => {
          const base = contexts[m.context];
          const link = base
            ? el("a", { href: base.replace(/\/?$/, "/") + `#/instance/${m.instance_id}`, "data-context": m.context }, L.shortId(m.instance_id))
            : el("code", { title: m.instance_id }, L.shortId(m.instance_id));
          return el("tr", { "data-milestone": m.milestone },
            el("td", {}, time(m.reached_at)), el("td", {}, m.context), el("td", {}, m.process),
            el("td", {}, m.milestone), el("td", {}, link));
        }))));
    }

    async function refresh() {
      const f = await api("flows");
      const names = [...new Set(f.stages.map(s => s.flow))];
      if (!names.length) {
        fill(flowsBox, el("p", { class: "muted" },
          "No flow is declared in this schema: declare one with `longrun monitor --flow FILE` and read the contexts' milestones into it."));
      } else {
        fill(flowsBox, names.map(n => el("section", {}, el("h2", {}, n),
          chain(n, f.stages.filter(s => s.flow === n), f.durations.filter(d => d.flow === n)))));
      }
      fill(stuckBody, ...f.stuck.map(s => el("tr", { "data-trace": s.trace_key },
        el("td", {}, s.flow), el("td", {}, el("a", { href: "#/flows?" + query({ trace: s.trace_key }) }, s.trace_key)),
        el("td", {}, s.milestone), el("td", {}, s.context), el("td", {}, time(s.reached_at)),
        el("td", { class: "num" }, seconds(s.waiting_seconds)))));
      if (!f.stuck.length) fill(stuckBody, el("tr", {}, el("td", { colspan: 6, class: "muted" }, "Nothing is stuck.")));
      await showTrace(f.contexts);
    }
    await refresh();
    return { refresh };
  }

  function main() { return document.getElementById("main"); }
  L.pages.flows = flowsPage;
})();
