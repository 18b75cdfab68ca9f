// The jobs dashboard: lists jobs newest first from `jobs`, follows `events` (Server-Sent
// Events) for status changes, refreshes the progress of running jobs every second, and cancels
// with `DELETE jobs/{id}`. Text goes into the page only through textContent (no HTML parsing).
"use strict";

(function () {
  const readOnly = document.body.dataset.mode === "read-only";
  const tbody = document.querySelector("#jobs tbody");
  const more = document.getElementById("more");
  const live = document.getElementById("live");
  const notice = document.getElementById("notice");
  const rows = new Map(); // job id -> { tr, view }
  let filter = "";
  let cursor = null;

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function time(ms) {
    return ms == null ? "" : new Date(ms).toLocaleTimeString();
  }

  function duration(ms) {
    if (ms == null) return "";
    return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(1) + " s";
  }

  function isLive(status) {
    return status === "pending" || status === "running";
  }

  function fill(tr, view) {
    tr.replaceChildren();
    tr.dataset.status = view.status;
    const id = el("td", "id", view.job_id);
    tr.append(id);
    const status = el("td", "status status-" + view.status, view.status);
    status.dataset.label = "status";
    if (view.message != null) status.append(el("span", "message", view.message));
    tr.append(status);
    const replica = el("td", "replica", view.replica == null ? "" : view.replica);
    replica.dataset.label = "replica";
    tr.append(replica);
    const progressCell = el("td", "progress");
    progressCell.dataset.label = "progress";
    const p = view.progress;
    if (p) {
      const bar = el("progress");
      const fraction = p.fraction != null ? p.fraction : (p.total ? p.done / p.total : null);
      bar.max = 1;
      if (fraction != null) bar.value = Math.max(0, Math.min(1, fraction));
      progressCell.append(bar);
      if (fraction != null) progressCell.append(el("span", "percent", " " + Math.round(fraction * 100) + "%"));
      if (p.message != null) progressCell.append(el("span", "message-progress", " " + p.message));
    }
    tr.append(progressCell);
    const submitted = el("td", "submitted", time(view.submitted_at_ms));
    submitted.dataset.label = "submitted";
    tr.append(submitted);
    const ran = el("td", "ran", duration(view.run_time_ms));
    ran.dataset.label = "ran";
    tr.append(ran);
    const actions = el("td", "actions");
    if (!readOnly && isLive(view.status)) {
      const button = el("button", "cancel", "Cancel");
      button.type = "button";
      button.addEventListener("click", () => cancel(view.job_id, button));
      actions.append(button);
    }
    tr.append(actions);
  }

  function show(view, atTop) {
    const known = rows.get(view.job_id);
    if (known) {
      known.view = view;
      fill(known.tr, view);
      return;
    }
    if (filter && view.status !== filter) return;
    const tr = el("tr", "job");
    tr.dataset.id = view.job_id;
    fill(tr, view);
    rows.set(view.job_id, { tr, view });
    if (atTop) tbody.prepend(tr); else tbody.append(tr);
  }

  function say(text) {
    notice.hidden = !text;
    notice.textContent = text || "";
  }

  async function getJson(url, options) {
    const response = await fetch(url, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok && response.status !== 503) throw new Error(body.error || response.statusText);
    return body;
  }

  async function load(reset) {
    if (reset) {
      rows.clear();
      tbody.replaceChildren();
      cursor = null;
    }
    const query = new URLSearchParams({ limit: "100" });
    if (filter) query.set("status", filter);
    if (cursor) query.set("cursor", cursor);
    try {
      const page = await getJson("jobs?" + query);
      for (const view of page.jobs) show(view, false);
      cursor = page.next_cursor;
      more.hidden = !cursor;
      say(page.cluster === false ? "Showing this replica only: " + (page.error || "cluster unavailable") : "");
    } catch (error) {
      say("Cannot list jobs: " + error.message);
    }
  }

  async function counts() {
    try {
      const health = await getJson("health");
      for (const status of ["pending", "running", "completed", "failed", "cancelled"]) {
        document.getElementById("count-" + status).textContent = String(health[status] ?? "");
      }
      document.getElementById("count-all").textContent = String(health.total ?? "");
      if (health.accepting === false) say("Not accepting new jobs" + (health.not_accepting ? ": " + health.not_accepting : ""));
    } catch (error) {
      // The next tick tries again.
    }
  }

  // After a status change, the counts again within 300 ms (at most once per 300 ms).
  let countsTimer = null;
  function countsSoon() {
    if (countsTimer === null) {
      countsTimer = setTimeout(() => { countsTimer = null; counts(); }, 300);
    }
  }

  async function refreshRunning() {
    const running = [...rows.values()].filter((row) => row.view.status === "running");
    if (running.length === 0) return;
    try {
      const page = await getJson("jobs?status=running&limit=1000");
      for (const view of page.jobs) if (rows.has(view.job_id)) show(view, false);
    } catch (error) {
      // The next tick tries again.
    }
  }

  async function cancel(id, button) {
    button.disabled = true;
    button.textContent = "Cancelling";
    try {
      show(await getJson("jobs/" + encodeURIComponent(id), { method: "DELETE" }), false);
    } catch (error) {
      say("Cannot cancel: " + error.message);
      button.disabled = false;
      button.textContent = "Cancel";
    }
  }

  function follow() {
    const events = new EventSource("events");
    events.onopen = () => { live.textContent = "live"; live.className = "live on"; };
    events.onerror = () => { live.textContent = "reconnecting"; live.className = "live off"; };
    for (const status of ["pending", "running", "completed", "failed", "cancelled", "lost"]) {
      events.addEventListener(status, (event) => {
        try { show(JSON.parse(event.data), true); } catch (error) { /* not a job */ }
        countsSoon();
      });
    }
    events.addEventListener("lagged", () => load(true));
  }

  for (const button of document.querySelectorAll(".filter")) {
    button.addEventListener("click", () => {
      for (const other of document.querySelectorAll(".filter")) other.classList.remove("selected");
      button.classList.add("selected");
      filter = button.dataset.status;
      load(true);
    });
  }
  more.addEventListener("click", () => load(false));

  load(true);
  counts();
  follow();
  setInterval(counts, 2000);
  setInterval(refreshRunning, 1000);
})();
