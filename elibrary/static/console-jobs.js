// The digitisation queue's live figures: the jobs page and a run's page ask the server for
// small JSON answers every two seconds and update the states and progress in place (text
// only, never markup). A run's page reloads once its run has ended, to show its per-page
// results as the server renders them.
"use strict";
(function () {
  const PERIOD_MS = 2000;
  const status = document.getElementById("live-status");
  let failures = 0;

  function note(ok) {
    if (!status) return;
    failures = ok ? 0 : failures + 1;
    const text = failures >= 3 ? status.dataset.lost : status.dataset.live;
    if (status.textContent !== text) status.textContent = text;
  }
  function percent(p) {
    return p === null || p === undefined ? "—" : Math.round(p) + "%";
  }
  function poll(url, apply) {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
      .then((data) => { note(true); if (apply(data) !== false) setTimeout(() => poll(url, apply), PERIOD_MS); })
      .catch(() => { note(false); setTimeout(() => poll(url, apply), PERIOD_MS); });
  }

  const run = document.getElementById("run-live");
  if (run) {
    if (run.dataset.done === "yes") return;
    poll(run.dataset.url, (data) => {
      const bar = document.getElementById("run-progress");
      if (data.progress !== null && bar) bar.value = data.progress;
      document.getElementById("run-percent").textContent = percent(data.progress);
      document.getElementById("run-flow-state").textContent = data.flow_state || "—";
      if (data.done) { window.location.reload(); return false; }
      return true;
    });
    return;
  }

  const jobs = document.getElementById("jobs-live");
  if (!jobs) return;
  poll(jobs.dataset.url, (data) => {
    for (const l of data.launches || []) {
      const row = jobs.querySelector('tr[data-run="' + l.id + '"]');
      if (!row) continue;
      const cell = row.querySelector(".run-state");
      if (cell.dataset.state !== l.state) {
        // The words for each state are on the page, in its language.
        cell.dataset.state = l.state;
        cell.textContent = jobs.getAttribute("data-state-" + l.state) || l.state;
      }
      row.querySelector(".run-progress").textContent = percent(l.progress);
    }
    const body = document.querySelector("#jobs tbody");
    if (body && data.runs) {
      const rows = data.runs.map((r) => {
        const tr = document.createElement("tr");
        for (const v of [r.flow, r.name, r.state, percent(r.progress), r.started]) {
          const td = document.createElement("td");
          td.textContent = v;
          tr.appendChild(td);
        }
        return tr;
      });
      body.replaceChildren(...rows);
      document.getElementById("jobs-count").textContent = String(rows.length);
    }
    return true;
  });
})();
