/* Qor e-library viewer: renders one page of the copy with pdf.js (Debian libjs-pdf).
   The PDF is fetched by HTTP range requests, so only the parts a page needs travel. */
(function () {
  "use strict";
  var root = document.getElementById("viewer");
  if (!root || typeof pdfjsLib === "undefined") { return; }
  var canvas = document.getElementById("page-canvas");
  var status = document.getElementById("status");
  var input = document.getElementById("page-number");
  var labelTemplate = root.getAttribute("data-label-page");
  var current = parseInt(root.getAttribute("data-page"), 10) || 1;
  var doc = null;
  var rendering = null;

  pdfjsLib.GlobalWorkerOptions.workerSrc = root.getAttribute("data-worker");

  function label(n, total) {
    return labelTemplate.replace("%(n)d", String(n)).replace("%(total)d", String(total));
  }

  function show(n) {
    if (!doc) { return; }
    n = Math.max(1, Math.min(doc.numPages, n));
    current = n;
    input.value = String(n);
    input.max = String(doc.numPages);
    var url = new URL(window.location.href);
    url.searchParams.set("page", String(n));
    window.history.replaceState(null, "", url.toString());
    document.getElementById("prev").href = "?page=" + Math.max(1, n - 1);
    document.getElementById("next").href = "?page=" + Math.min(doc.numPages, n + 1);
    doc.getPage(n).then(function (page) {
      var viewport = page.getViewport({ scale: 1.5 });
      canvas.width = Math.floor(viewport.width);
      canvas.height = Math.floor(viewport.height);
      if (rendering) { rendering.cancel(); }
      rendering = page.render({ canvasContext: canvas.getContext("2d"), viewport: viewport });
      return rendering.promise;
    }).then(function () {
      rendering = null;
      canvas.setAttribute("aria-label", label(n, doc.numPages));
      canvas.setAttribute("data-rendered-page", String(n));
      status.textContent = label(n, doc.numPages);
    }).catch(function (err) {
      if (err && err.name === "RenderingCancelledException") { return; }
      status.textContent = String(err);
    });
  }

  document.getElementById("goto").addEventListener("submit", function (ev) {
    ev.preventDefault();
    show(parseInt(input.value, 10) || 1);
  });
  document.getElementById("prev").addEventListener("click", function (ev) {
    ev.preventDefault(); show(current - 1);
  });
  document.getElementById("next").addEventListener("click", function (ev) {
    ev.preventDefault(); show(current + 1);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.target && ev.target.tagName === "INPUT") { return; }
    if (ev.key === "PageDown" || ev.key === "ArrowRight") { show(current + 1); }
    if (ev.key === "PageUp" || ev.key === "ArrowLeft") { show(current - 1); }
  });

  pdfjsLib.getDocument({
    url: root.getAttribute("data-pdf"),
    disableAutoFetch: true,
    disableStream: true,
    rangeChunkSize: 262144,
    isEvalSupported: false,
    withCredentials: true
  }).promise.then(function (pdf) {
    doc = pdf;
    show(current);
  }).catch(function (err) {
    status.textContent = String(err && err.message ? err.message : err);
  });
}());
