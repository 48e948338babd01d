/* Qor e-library: a copy in Mirador (npm "mirador", served from /mirador, never a CDN).

   0. The page on screen is drawn at once (<img id="first-page">, an Image API size); the
      manifest and Mirador's bundle are asked for only after it was drawn.
   1. The page's manifest (IIIF Presentation 3.0) is fetched; before any image is asked for, the
      IIIF Authorization Flow 2.0 probe service of the first page image is asked whether this
      browser may see it. When not, the access service's prompt is shown (heading, note,
      button) and Mirador is not started: no image or text is requested at all.
      The button opens the access service (the sign-in page) in a window; when that window is
      closed the token service (in an iframe, by postMessage) gives a token, the probe is asked
      again with it, and on success the page reloads with the reader's session.
   2. Mirador opens the manifest on the asked page (?page=N), with its thumbnails strip, deep
      zoom from the Image API tiles, and in-book search; with ?q= the search runs at once and
      its first hit is selected (highlighted on its page).
      Mirador 4.0 speaks Content Search 0/1: a response postprocessor reads the manifest's
      SearchService2 as its search service and turns the Content Search 2.0 AnnotationPage into
      the 1.0 shape Mirador draws (annotations with "on" targets and "hits").
   3. The OCR text of the page on screen is kept in the page (#ocr-text), for screen readers. */
(function () {
  "use strict";
  var root = document.getElementById("iiif-viewer");
  if (!root) { return; }
  var manifestUrl = root.getAttribute("data-manifest");
  var firstPage = parseInt(root.getAttribute("data-page"), 10) || 1;
  var query = root.getAttribute("data-q") || "";
  var textUrl = root.getAttribute("data-text-url");
  var labelPage = root.getAttribute("data-label-page");
  var status = document.getElementById("viewer-status");
  var prompt = document.getElementById("auth-prompt");
  var SEARCH_1 = "http://iiif.io/api/search/1/search";

  function setState(state, message) {
    root.setAttribute("data-state", state);
    if (message !== undefined) { status.textContent = message; }
  }

  function asList(value) {
    if (value === undefined || value === null) { return []; }
    return Array.isArray(value) ? value : [value];
  }

  function ofType(services, type) {
    return asList(services).filter(function (s) {
      return s && (s.type === type || s["@type"] === type);
    })[0];
  }

  function label(value) {
    // A IIIF language map ({"kk": ["…"], "en": ["…"]}) in the page's language, else any.
    if (!value) { return ""; }
    if (typeof value === "string") { return value; }
    var lang = document.documentElement.lang;
    var pick = value[lang] || value.none || value.en || value[Object.keys(value)[0]];
    return asList(pick).join(" ");
  }

  // -- IIIF Authorization Flow 2.0 ------------------------------------------------------------

  function firstImageBody(manifest) {
    var canvas = asList(manifest.items)[0];
    var page = canvas && asList(canvas.items)[0];
    var anno = page && asList(page.items)[0];
    var body = anno && asList(anno.body)[0];
    return body || null;
  }

  function probe(service, token) {
    var headers = { Accept: "application/json" };
    if (token) { headers.Authorization = "Bearer " + token; }
    // Fails closed: a probe that cannot be read counts as "not allowed".
    return fetch(service.id, { credentials: "same-origin", headers: headers })
      .then(function (r) { return r.ok ? r.json() : { status: r.status }; })
      .catch(function () { return { status: 0 }; });
  }

  function getToken(tokenService) {
    return new Promise(function (resolve) {
      var messageId = String(Date.now());
      var frame = document.createElement("iframe");
      frame.hidden = true;
      frame.title = "token";
      function onMessage(event) {
        if (event.origin !== window.location.origin || !event.data ||
            event.data.messageId !== messageId) { return; }
        window.removeEventListener("message", onMessage);
        frame.remove();
        resolve(event.data.accessToken || null);
      }
      window.addEventListener("message", onMessage);
      frame.src = tokenService.id + "?" + new URLSearchParams({
        messageId: messageId, origin: window.location.origin }).toString();
      document.body.appendChild(frame);
    });
  }

  function showPrompt(access, result) {
    if (access) {
      var heading = label(access.heading) || label(result && result.heading);
      var note = label(access.note) || label(result && result.note);
      if (heading) { document.getElementById("auth-heading").textContent = heading; }
      if (note) { document.getElementById("auth-note").textContent = note; }
      var confirm = label(access.confirmLabel);
      var button = document.getElementById("auth-confirm");
      if (confirm) { button.textContent = confirm; }
      button.addEventListener("click", function () {
        var url = access.id + (access.id.indexOf("?") < 0 ? "?" : "&") +
          new URLSearchParams({ origin: window.location.origin }).toString();
        var win = window.open(url, "qor-access", "popup,width=480,height=640");
        if (!win) { window.location.href = url; return; }
        var timer = window.setInterval(function () {
          if (!win.closed) { return; }
          window.clearInterval(timer);
          var tokenService = ofType(access.service, "AuthAccessTokenService2");
          var retry = tokenService ? getToken(tokenService) : Promise.resolve(null);
          retry.then(function (token) {
            var probeService = root.probeService;
            return probeService ? probe(probeService, token) : { status: 200 };
          }).then(function (again) {
            if (again && again.status === 200) { window.location.reload(); }
          });
        }, 300);
      });
    } else {
      document.getElementById("auth-confirm").addEventListener("click", function () {
        window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname);
      });
    }
    prompt.hidden = false;
    document.getElementById("mirador").hidden = true;
    setState("auth", "");
  }

  // -- Content Search 2.0 -> the 1.0 shape Mirador 4 reads ------------------------------------

  function targetOf(target) {
    if (typeof target === "string") { return target; }
    if (!target) { return ""; }
    var source = target.source;
    var id = typeof source === "string" ? source : (source && source.id) || target.id || "";
    var selector = asList(target.selector)[0];
    if (selector && selector.value) { return id + "#" + selector.value.replace(/^#/, ""); }
    return id;
  }

  function search2to1(page) {
    if (!page || page.resources || !page.items) { return page; }
    var resources = asList(page.items).map(function (a) {
      var body = asList(a.body)[0] || {};
      return { "@id": a.id, "@type": "oa:Annotation", motivation: "sc:painting",
        resource: { "@type": "cnt:ContentAsText", chars: body.value || "" },
        on: targetOf(a.target) };
    });
    var hits = [];
    asList(page.annotations).forEach(function (ap) {
      asList(ap.items).forEach(function (c) {
        var t = c.target || {};
        var source = typeof t.source === "string" ? t.source : (t.source && t.source.id);
        var quote = asList(t.selector).filter(function (s) {
          return s.type === "TextQuoteSelector"; })[0] || {};
        if (source) {
          hits.push({ "@type": "search:Hit", annotations: [source], before: quote.prefix || "",
            match: quote.exact || "", after: quote.suffix || "" });
        }
      });
    });
    var next = page.next && (typeof page.next === "string" ? page.next : page.next.id);
    var total = page.partOf && page.partOf.total;
    var out = { "@context": ["http://iiif.io/api/presentation/2/context.json",
      "http://iiif.io/api/search/1/context.json"], "@id": page.id,
      "@type": "sc:AnnotationList", resources: resources,
      within: { "@type": "sc:Layer", total: total || resources.length } };
    if (hits.length) { out.hits = hits; }
    if (next) { out.next = next; }
    return out;
  }

  var received = {};
  function postprocess(url, action) {
    if (action && action.manifestJson) {
      asList(action.manifestJson.service).forEach(function (s) {
        if (s && s.type === "SearchService2" && !s.profile) { s.profile = SEARCH_1; }
      });
    }
    if (action && action.searchJson) {
      // Mirador 4.0 runs a window's defaultSearchQuery twice (on ADD_WINDOW and again on
      // UPDATE_WINDOW, once with the query as typed and once percent-encoded), which would list
      // every hit twice: the second answer to the same query within a few seconds is kept empty.
      var now = Date.now();
      var key = url;
      try { key = decodeURIComponent(url); } catch (e) { key = url; }
      var seen = received[key];
      received[key] = now;
      action.searchJson = (seen && now - seen < 5000)
        ? search2to1({ id: action.searchJson.id, items: [] })
        : search2to1(action.searchJson);
    }
    return action;
  }

  // -- the OCR text of the page on screen -----------------------------------------------------

  var shownPage = firstPage;
  function showText(n) {
    if (n === shownPage || !textUrl) { return; }
    shownPage = n;
    root.setAttribute("data-page-shown", String(n));
    document.getElementById("ocr-page").textContent = labelPage.replace("%(n)d", String(n));
    fetch(textUrl + n + "/text", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (text) { if (shownPage === n) {
        document.getElementById("ocr-text").textContent = text; } });
  }

  // -- accessibility fixes to Mirador 4.0's markup (found by axe-core in the browser tests) ----

  function fixMarkup(box) {
    // MUI puts aria-orientation on the tabs' wrapper, which has no role that allows it
    // (axe: aria-allowed-attr, critical); the tab list inside keeps its own.
    box.querySelectorAll(".MuiTabs-root[aria-orientation]").forEach(function (el) {
      if (el.getAttribute("role") !== "tablist") { el.removeAttribute("aria-orientation"); }
    });
    // Mirador's root is a second <main> inside the page's main landmark.
    box.querySelectorAll("main.mirador-viewer:not([role=region])").forEach(function (el) {
      el.setAttribute("aria-label", box.getAttribute("data-label") || "Mirador");
      el.setAttribute("role", "region");
    });
  }

  function watchMarkup(box) {
    fixMarkup(box);
    new MutationObserver(function () { fixMarkup(box); }).observe(box, {
      subtree: true, childList: true, attributes: true,
      attributeFilter: ["aria-orientation", "role"] });
  }

  // -- Mirador --------------------------------------------------------------------------------

  function start(manifest) {
    var canvases = asList(manifest.items).map(function (c) { return c.id; });
    var index = Math.max(0, Math.min(canvases.length - 1, firstPage - 1));
    // The manifest this page already has is handed to Mirador (it would fetch it again).
    postprocess(manifestUrl, { manifestJson: manifest });
    var win = { id: "copy", manifestId: manifestUrl, manifest: manifest, canvasIndex: index,
      thumbnailNavigationPosition: "far-bottom" };
    if (query) { win.defaultSearchQuery = query; }
    var narrow = window.matchMedia("(max-width: 40rem)").matches;
    var viewer = Mirador.viewer({
      id: "mirador",
      language: "en",
      windows: [win],
      window: { allowClose: false, allowMaximize: false, allowFullscreen: true,
        defaultView: "single", hideWindowTitle: narrow, sideBarOpenByDefault: !!query && !narrow,
        defaultSideBarPanel: query ? "search" : "info",
        panels: { info: true, attribution: true, canvas: true, search: true,
          annotations: false, layers: false } },
      workspace: { type: "mosaic", allowNewWindows: false, showZoomControls: true,
        isWorkspaceAddVisible: false },
      workspaceControlPanel: { enabled: false },
      thumbnailNavigation: { defaultPosition: "far-bottom", height: narrow ? 90 : 130 },
      requests: { postprocessors: [postprocess] }
    });
    window.qorViewer = viewer;
    watchMarkup(document.getElementById("mirador"));
    var folded = !(narrow && query);
    viewer.store.subscribe(function () {
      var state = viewer.store.getState();
      var w = state.windows.copy;
      if (!folded && w) {
        // On a phone the search panel covers the page: once the first hit is selected (and
        // Mirador has turned to its page), fold the panel away so the highlighted page shows.
        var panels = Object.values((state.searches || {}).copy || {});
        if (panels.some(function (p) {
          return (p.selectedContentSearchAnnotationIds || []).length > 0; })) {
          folded = true;
          viewer.store.dispatch(Mirador.setCompanionAreaOpen("copy", false));
        }
      }
      if (!w || !w.canvasId) { return; }
      var n = canvases.indexOf(w.canvasId) + 1;
      if (n > 0) { root.setAttribute("data-canvas-page", String(n)); showText(n); }
    });
    setState("ready", "");
    root.setAttribute("data-page-shown", String(firstPage));
  }

  // The page on screen (<img id="first-page">, at screen size) is drawn first; only then are
  // the manifest and Mirador's bundle (0.7 MB gzip) asked for, so the first page waits for
  // neither.
  var script = document.currentScript;
  var miradorUrl = script && script.getAttribute("data-mirador");
  var firstPainted = new Promise(function (resolve) {
    var first = document.getElementById("first-page");
    function afterPaint() {
      requestAnimationFrame(function () { requestAnimationFrame(function () { resolve(); }); });
    }
    if (!first || (first.complete && first.naturalWidth)) { afterPaint(); return; }
    first.addEventListener("load", afterPaint);
    first.addEventListener("error", function () { resolve(); });
  });
  var miradorReady = firstPainted.then(function () {
    return new Promise(function (resolve, reject) {
      if (typeof window.Mirador !== "undefined") { resolve(); return; }
      var tag = document.createElement("script");
      tag.src = miradorUrl;
      tag.onload = function () { resolve(); };
      tag.onerror = function () { reject(new Error("mirador")); };
      document.body.appendChild(tag);
    });
  });

  setState("loading");
  firstPainted.then(function () {
    return fetch(manifestUrl, { credentials: "same-origin",
      headers: { Accept: "application/ld+json" } });
  })
    .then(function (r) {
      if (r.status === 401 || r.status === 403) { return { denied: true }; }
      if (!r.ok) { throw new Error("manifest " + r.status); }
      return r.json();
    })
    .then(function (manifest) {
      if (manifest.denied) { showPrompt(null, null); return; }
      var body = firstImageBody(manifest);
      var probeService = body && ofType(body.service, "AuthProbeService2");
      if (!probeService) { return miradorReady.then(function () { start(manifest); }); }
      root.probeService = probeService;
      return probe(probeService, null).then(function (result) {
        if (result && result.status === 200) {
          return miradorReady.then(function () { start(manifest); });
        }
        showPrompt(ofType(probeService.service, "AuthAccessService2"), result);
      });
    })
    .catch(function () {
      setState("error", root.getAttribute("data-label-unavailable"));
    });
}());
