// The task list and the task page of the longrun console: what a clerk sees and does. Uses
// the helpers app.js shares (window.longrun); every value from the server is put in the page
// as text, never as HTML.
(function () {
  "use strict";
  const L = window.longrun;
  const { el, fill, api, post, time, query, table, setStatus, showError, diagram } = L;
  const VIEWS = [["mine", "Mine"], ["groups", "My groups'"], ["all", "All"], ["overdue", "Overdue"]];

  function due(t) {
    if (!t.due_at) return "";
    const overdue = Date.parse(t.due_at) < Date.now();
    return el("span", { class: overdue ? "overdue" : null, title: overdue ? "overdue" : null }, time(t.due_at) + (overdue ? " (overdue)" : ""));
  }
  function offered(t) {
    return [...t.candidate_groups, ...t.candidate_users.map(u => "user " + u)].join(", ");
  }

  async function tasksPage(parts, params) {
    const me = await api("me");
    const view = params.get("view") || (me.user ? "groups" : "all");
    const process = params.get("process") || "";
    let after = params.get("after") || "";
    const who = el("p", { class: "muted", id: "me" }, me.user
      ? `You are ${me.user}${me.groups.length ? ", in " + me.groups.join(", ") : ", in no group"}.`
      : "No user is named by the host's authentication: only the lists of all tasks can be shown, and tasks cannot be claimed or completed.");
    const tabs = el("div", { class: "bar", id: "views" }, VIEWS.map(([v, label]) =>
      el("a", { href: "#/tasks?" + query({ view: v, process }), class: v === view ? "active" : null, "data-view": v }, label)));
    const body = el("tbody");
    const pager = el("div", { class: "bar" });
    fill(main(), el("h1", {}, "Tasks"), who, tabs,
      el("table", { id: "tasks" },
        el("thead", {}, el("tr", {}, ["Task", "Process", "Step", "Business key", "Held by", "Offered to", "Priority", "Due", "Created", ""].map(h => el("th", {}, h)))),
        body), pager);
    async function refresh() {
      const page = await api("tasks?" + query({ view, process, after, limit: 50 }));
      fill(body, ...page.tasks.map(t => el("tr", { "data-task": t.task_id, "data-key": t.business_key },
        el("td", {}, el("a", { href: `#/task/${t.task_id}` }, el("code", { title: t.task_id }, L.shortId(t.task_id)))),
        el("td", {}, t.process), el("td", {}, t.step), el("td", {}, t.business_key),
        el("td", {}, t.assignee || ""), el("td", {}, offered(t)),
        el("td", { class: "num" }, t.priority), el("td", {}, due(t)), el("td", {}, time(t.created_at)),
        el("td", {}, me.user && !t.assignee ? el("button", { "data-action": "claim", onclick: async () => {
          await post(`tasks/${t.task_id}/claim`, {});
          setStatus(`claimed ${t.business_key}`);
          await refresh();
        } }, "Claim") : null))));
      if (!page.tasks.length) fill(body, el("tr", {}, el("td", { colspan: 10, class: "muted" }, "No open task here.")));
      fill(pager,
        after ? el("button", { type: "button", onclick: () => { location.hash = "#/tasks?" + query({ view, process }); } }, "First page") : null,
        page.next ? el("button", { type: "button", id: "next", onclick: () => { location.hash = "#/tasks?" + query({ view, process, after: page.next }); } }, "Next page") : null);
    }
    await refresh();
    return { refresh };
  }

  // An input for a declared field of the given type.
  function input(name, type) {
    if (type === "boolean") return el("input", { type: "checkbox", name, "data-type": type });
    if (type === "number") return el("input", { type: "number", step: "any", name, required: true, "data-type": type });
    if (type === "string") return el("input", { type: "text", name, "data-type": type });
    return el("textarea", { name, rows: 3, placeholder: "JSON", required: true, "data-type": type });
  }
  function readForm(form, fields) {
    const out = {};
    for (const [name, type] of Object.entries(fields)) {
      const f = form.elements[name];
      if (type === "boolean") out[name] = f.checked;
      else if (type === "number") out[name] = Number(f.value);
      else if (type === "string") out[name] = f.value;
      else out[name] = JSON.parse(f.value);
    }
    return out;
  }

  async function taskPage(parts) {
    const id = parts[1];
    const me = await api("me");
    const title = el("h1", {}, "Task ", el("code", {}, id));
    const facts = el("dl", { class: "facts", id: "task-facts" });
    const actions = el("div", { class: "bar", id: "task-actions" });
    const form = el("form", { id: "complete", class: "filters" });
    const container = el("div", { class: "diagram", id: "diagram" });
    const vars = el("pre", { id: "variables" });
    fill(main(), title, actions, facts, el("h2", {}, "Complete"), form,
      el("h2", {}, "Where it is"), container, el("h2", {}, "The instance's variables"), vars);
    let d = null;
    let shownFor = null;
    async function refresh() {
      let t;
      try { t = await api(`tasks/${id}`); }
      catch (e) {
        fill(facts, el("p", { class: "muted" }, e.message));
        fill(actions); fill(form);
        return;
      }
      if (!d) {
        d = await diagram(container, t.process, t.version);
        const e = d.elementOf(t.step);
        if (e) d.viewer.get("canvas").addMarker(e, "lr-current");
      }
      fill(facts,
        el("dt", {}, "Process"), el("dd", {}, el("a", { href: `#/process/${encodeURIComponent(t.process)}/${t.version}` }, `${t.process} v${t.version}`)),
        el("dt", {}, "Step"), el("dd", {}, t.step),
        el("dt", {}, "Business key"), el("dd", {}, el("a", { href: `#/instance/${t.instance_id}` }, t.business_key)),
        el("dt", {}, "Held by"), el("dd", { id: "assignee" }, t.assignee || "nobody"),
        el("dt", {}, "Offered to"), el("dd", {}, offered(t) || "nobody"),
        el("dt", {}, "Priority"), el("dd", {}, t.priority),
        el("dt", {}, "Due"), el("dd", {}, due(t) || "no due date"),
        t.follow_up_at ? [el("dt", {}, "Follow up"), el("dd", {}, time(t.follow_up_at))] : null,
        t.form ? [el("dt", {}, "Form"), el("dd", {}, t.form)] : null,
        el("dt", {}, "Created"), el("dd", {}, time(t.created_at)));
      const mine = me.user && t.assignee === me.user;
      const other = t.assignee && !mine;
      fill(actions,
        me.user && !t.assignee ? el("button", { class: "primary", "data-action": "claim", onclick: () => act("claim", {}, null) }, "Claim") : null,
        me.user && other ? el("button", { class: "danger", "data-action": "take", onclick: () => act("claim", { force: true }, `Take task from ${t.assignee}?`) }, `Take from ${t.assignee}`) : null,
        mine ? el("button", { "data-action": "unclaim", onclick: () => act("unclaim", {}, "Release the task to its candidates?") }, "Release") : null,
        me.user && !other ? el("button", { "data-action": "assign", onclick: () => {
          const to = window.prompt("Give the task to (a user name):", "");
          if (to && to.trim()) act("assign", { assignee: to.trim() }, null);
        } }, "Delegate") : null);
      // The form is built once per task state, not on every refresh (the clerk may be typing).
      const state = `${t.assignee}`;
      if (shownFor === state) { vars.textContent = JSON.stringify(t.variables, null, 2); return; }
      shownFor = state;
      vars.textContent = JSON.stringify(t.variables, null, 2);
      const names = Object.entries(t.fields);
      const free = el("textarea", { name: "__vars", rows: 4, placeholder: '{"approved": true}' });
      fill(form,
        names.length ? names.map(([name, type]) => el("label", {}, `${name} (${type})`, input(name, type)))
          : el("label", {}, "Variables (a JSON object)", free),
        el("button", { class: "primary", type: "submit", disabled: !me.user || other ? true : null }, "Complete"),
        other ? el("span", { class: "muted" }, `held by ${t.assignee}`) : null);
      form.onsubmit = ev => {
        ev.preventDefault();
        let variables;
        try { variables = names.length ? readForm(form, t.fields) : JSON.parse(free.value.trim() || "{}"); }
        catch (e) { showError("Not JSON: " + e.message); return; }
        act("complete", { variables }, `Complete the task with ${JSON.stringify(variables)}?`);
      };
    }
    async function act(action, body, confirmText) {
      if (confirmText && !window.confirm(confirmText)) return;
      try {
        await post(`tasks/${id}/${action}`, body);
        setStatus(`${action}: done`);
        showError("");
      } catch (e) { showError(e.message); }
      shownFor = null;
      await refresh();
    }
    await refresh();
    return { refresh };
  }

  function main() { return document.getElementById("main"); }
  L.pages.tasks = tasksPage;
  L.pages.task = taskPage;
})();
