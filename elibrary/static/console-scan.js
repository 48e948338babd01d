// The stocktake scanning page (R14): no scan is ever lost, however fast they come.
// Every barcode typed with Enter goes into a queue at once (and into localStorage, so a
// reload keeps it); the queue is sent in numbered batches CLIENT:SEQ, one at a time and in
// order, and a batch is sent again until the server acknowledges it. The server stores each
// batch once, so a batch whose answer was lost is not stored twice.
"use strict";
(function () {
  const box = document.getElementById("scanner");
  if (!box) return;
  const input = document.getElementById("scan");
  const where = document.getElementById("location");
  const status = document.getElementById("scan-status");
  const url = box.dataset.url;
  const csrf = box.dataset.csrf;
  const storeKey = "qor-scan-queue:" + url;
  const MAX_BATCH = 200;

  function newClient() {
    const bytes = new Uint8Array(12);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  let state = null;
  try { state = JSON.parse(localStorage.getItem(storeKey) || "null"); } catch (e) { state = null; }
  if (!state || !Array.isArray(state.queue)) {
    state = { client: newClient(), seq: 1, inflight: null, queue: [] };
  }
  function save() {
    try { localStorage.setItem(storeKey, JSON.stringify(state)); } catch (e) { /* full: memory only */ }
  }
  function set(id, value) {
    const el = document.getElementById(id);
    if (el && value !== undefined) el.textContent = String(value);
  }
  function waiting() {
    return state.queue.length + (state.inflight ? state.inflight.codes.length : 0);
  }
  function showQueue() { set("count-queued", waiting()); }

  let sending = false;
  let backoff = 200;
  function send() {
    if (sending) return;
    if (!state.inflight) {
      if (state.queue.length === 0) { showQueue(); return; }
      state.inflight = { batch: state.client + ":" + state.seq, codes: state.queue.splice(0, MAX_BATCH),
                         location: where ? where.value.trim() : "" };
      save();
    }
    sending = true;
    const body = new URLSearchParams();
    body.set("csrf_token", csrf);
    body.set("batch", state.inflight.batch);
    body.set("codes", state.inflight.codes.join("\n"));
    body.set("location", state.inflight.location);
    fetch(url, { method: "POST", body: body, credentials: "same-origin",
                 headers: { "Accept": "application/json" } })
      .then((r) => r.json().catch(() => ({})).then((data) => ({ r: r, data: data })))
      .then(({ r, data }) => {
        sending = false;
        if (r.ok) {
          state.inflight = null;
          state.seq += 1;
          save();
          backoff = 200;
          for (const k of ["scans", "expected", "found", "missing", "unexpected", "misplaced"]) {
            set("count-" + k, data[k]);
          }
          status.textContent = data.refused && data.refused.length ? data.refused.join("; ") : "";
          showQueue();
          send();
        } else if (r.status >= 500 || data.retryable) {
          retry(data.error || ("HTTP " + r.status));
        } else {
          // Refused for good (closed stocktake, signed out): the scans stay queued, not lost.
          status.textContent = data.error || ("HTTP " + r.status);
          showQueue();
        }
      })
      .catch((e) => { sending = false; retry(String(e)); });
  }
  function retry(why) {
    status.textContent = why + " — " + waiting() + " …";
    showQueue();
    setTimeout(send, backoff);
    backoff = Math.min(backoff * 2, 5000);
  }

  input.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const code = input.value.trim();
    input.value = "";
    if (!code) return;
    state.queue.push(code);
    save();
    showQueue();
    send();
  });
  window.addEventListener("beforeunload", (ev) => {
    if (waiting() > 0) { ev.preventDefault(); ev.returnValue = ""; }
  });
  showQueue();
  send();
})();
