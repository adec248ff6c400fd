// digitlab studio: the shell (API client, routing, element and chart helpers) and the Runs,
// Run and Train views. Other views (draw.js, inside.js, compare.js) register themselves on
// window.Studio.views; see studio/README.md for the contract. No build step, no libraries.
(function () {
  "use strict";

  const meta = (name) => {
    const node = document.querySelector(`meta[name="${name}"]`);
    return node ? node.getAttribute("content") : "";
  };
  const token = meta("digitlab-token");
  const auth = meta("digitlab-auth") === "1"; // a token is required on every request

  if (auth) {
    // The page's own requests carry the token as a header; EventSource and <img> cannot,
    // so the cookie (and ?token= on their URLs) covers them.
    document.cookie = `digitlab_token=${encodeURIComponent(token)}; path=/; SameSite=Strict`;
  }

  const SVG_NS = "http://www.w3.org/2000/svg";
  const SVG_TAGS = new Set([
    "svg", "g", "path", "line", "circle", "rect", "text", "polyline", "polygon", "title", "tspan",
  ]);

  /** el("div", {class: "x", onclick: f, dataset: {runId: 1}}, "text", child, [more]) */
  function el(tag, attrs, ...children) {
    const node = SVG_TAGS.has(tag)
      ? document.createElementNS(SVG_NS, tag)
      : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on") && typeof value === "function") {
        node.addEventListener(key.slice(2), value);
      } else if (key === "style" && typeof value === "object") {
        Object.assign(node.style, value);
      } else if (key === "dataset") {
        Object.assign(node.dataset, value);
      } else if (key === "value" && "value" in node) {
        node.value = value;
      } else if (key === "checked" || key === "selected" || key === "disabled") {
        node[key] = Boolean(value);
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    }
    const add = (child) => {
      if (child === null || child === undefined || child === false) return;
      if (Array.isArray(child)) child.forEach(add);
      else node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    };
    children.forEach(add);
    return node;
  }

  function withToken(path) {
    if (!auth) return path;
    return path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token);
  }

  /** fetch JSON; throws Error(the server's one-line message) on an error status. */
  async function api(path, options = {}) {
    const headers = Object.assign({ "X-Digitlab-Token": token }, options.headers || {});
    let body = options.body;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["Content-Type"] = "application/json";
    }
    const method = options.method || (body !== undefined ? "POST" : "GET");
    const response = await fetch(path, { method, headers, body, credentials: "same-origin" });
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
    }
    return data;
  }

  const EVENT_TYPES = ["message", "history", "status", "reset", "runs"];

  /** An EventSource on path; onMessage(data, type) for each event (JSON-decoded). */
  function events(path, onMessage, types = EVENT_TYPES) {
    const source = new EventSource(withToken(path));
    const conn = document.getElementById("conn");
    for (const type of types) {
      source.addEventListener(type, (event) => {
        let data = event.data;
        try {
          data = JSON.parse(event.data);
        } catch (err) {
          /* plain text */
        }
        onMessage(data, type);
      });
    }
    source.addEventListener("open", () => conn && conn.classList.add("live"));
    source.addEventListener("error", () => conn && conn.classList.remove("live"));
    return source;
  }

  // --- formatting ---------------------------------------------------------------------------
  const pct = (v, digits = 2) => (v === null || v === undefined ? "" : (100 * v).toFixed(digits) + "%");
  const num = (v, digits = 4) => (v === null || v === undefined ? "" : Number(v).toPrecision(digits));
  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");
  const badge = (state) => el("span", { class: `badge ${state}`, "data-testid": "run-status" }, state);

  // --- charts (SVG, our own) ----------------------------------------------------------------
  const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d",
    "#4d7c0f", "#7c3aed", "#b45309"];

  function niceTicks(low, high, count = 5) {
    if (!(high > low)) return [low];
    const step0 = (high - low) / count;
    const magnitude = Math.pow(10, Math.floor(Math.log10(step0)));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= step0) || step0;
    const ticks = [];
    for (let t = Math.ceil(low / step) * step; t <= high + step * 1e-9; t += step) ticks.push(t);
    return ticks;
  }

  /** Ticks for a log axis spanning 10^low..10^high: 1-2-5 steps, or whole decades if many. */
  function logTicks(low, high) {
    const out = [];
    for (let k = Math.floor(low); k <= Math.ceil(high); k++) {
      for (const m of [1, 2, 5]) {
        const t = m * Math.pow(10, k);
        if (Math.log10(t) >= low && Math.log10(t) <= high) out.push(t);
      }
    }
    if (out.length > 6) return out.filter((t) => Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9);
    return out.length ? out : [Math.pow(10, (low + high) / 2)];
  }

  /**
   * Line chart: series = [{name, values: [y or null per x], color}], x = 1..n (or opts.x).
   * opts: {title, width, height, log, percent, testid, points}. Returns the <svg>.
   */
  function line(parent, series, opts = {}) {
    const width = opts.width || 460, height = opts.height || 220;
    const margin = { left: 54, right: 12, top: 24, bottom: 30 };
    const n = Math.max(0, ...series.map((s) => s.values.length));
    const xs = opts.x || Array.from({ length: n }, (_, i) => i + 1);
    const usable = (v) => v !== null && v !== undefined && isFinite(v) && (!opts.log || v > 0);
    const all = series.flatMap((s) => s.values.filter(usable));
    const svg = el("svg", {
      class: "chart", viewBox: `0 0 ${width} ${height}`, width, height,
      "data-testid": opts.testid, "data-points": n, role: "img",
      "aria-label": opts.title || "chart",
    });
    if (opts.title) svg.appendChild(el("text", { x: margin.left, y: 15, class: "chart-title" }, opts.title));
    if (!all.length) {
      svg.appendChild(el("text", { x: width / 2, y: height / 2, class: "chart-empty", "text-anchor": "middle" }, "no data yet"));
      if (parent) parent.appendChild(svg);
      return svg;
    }
    const tf = opts.log ? Math.log10 : (v) => v;
    let low = Math.min(...all.map(tf)), high = Math.max(...all.map(tf));
    if (opts.yMin !== undefined) low = Math.min(low, tf(opts.yMin));
    if (high - low < 1e-12) { low -= opts.log ? 0.5 : Math.max(Math.abs(low) * 0.5, 0.05); high += opts.log ? 0.5 : Math.max(Math.abs(high) * 0.5, 0.05); }
    const pad = (high - low) * 0.05;
    const floor = !opts.log && all.every((v) => v >= 0) ? 0 : -Infinity; // shares, rates: not below 0
    low = floor === 0 ? Math.max(low - pad, 0) : low - pad;
    high += pad;
    const x0 = xs[0] ?? 1, x1 = xs[xs.length - 1] ?? 1;
    const sx = (x) => margin.left + (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5) * (width - margin.left - margin.right);
    const sy = (v) => margin.top + (1 - (tf(v) - low) / (high - low)) * (height - margin.top - margin.bottom);
    const grid = el("g", { class: "grid" });
    const ticks = opts.log ? logTicks(low, high) : niceTicks(low, high, 4);
    for (const t of ticks) {
      const y = sy(t);
      if (y < margin.top - 1 || y > height - margin.bottom + 1) continue;
      grid.appendChild(el("line", { x1: margin.left, x2: width - margin.right, y1: y, y2: y }));
      const label = opts.percent ? (100 * t).toFixed(1) + "%" : Number(t.toPrecision(3)).toString();
      grid.appendChild(el("text", { x: margin.left - 6, y: y + 4, "text-anchor": "end" }, label));
    }
    for (const t of niceTicks(x0, x1, Math.min(6, Math.max(1, x1 - x0))).filter((t) => Number.isInteger(t))) {
      grid.appendChild(el("text", { x: sx(t), y: height - margin.bottom + 16, "text-anchor": "middle" }, String(t)));
    }
    grid.appendChild(el("text", { x: width - margin.right, y: height - 4, "text-anchor": "end" }, opts.xLabel || "epoch"));
    svg.appendChild(grid);
    series.forEach((s, i) => {
      const color = s.color || PALETTE[i % PALETTE.length];
      let d = "";
      let pen = false;
      s.values.forEach((v, j) => {
        if (!usable(v)) { pen = false; return; }
        d += `${pen ? "L" : "M"}${sx(xs[j]).toFixed(1)},${sy(v).toFixed(1)}`;
        pen = true;
      });
      svg.appendChild(el("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, class: "series" }));
      if (opts.points !== false && n <= 200) {
        const dots = el("g", { class: "points", "data-series": s.name });
        s.values.forEach((v, j) => {
          if (!usable(v)) return;
          dots.appendChild(el("circle", { cx: sx(xs[j]), cy: sy(v), r: 2.4, fill: color },
            el("title", {}, `${s.name}, ${opts.xLabel || "epoch"} ${xs[j]}: ${opts.percent ? pct(v) : num(v)}`)));
        });
        svg.appendChild(dots);
      }
    });
    const legend = el("g", { class: "legend" });
    let lx = width - margin.right;
    [...series].reverse().forEach((s, ri) => {
      const i = series.length - 1 - ri;
      const color = s.color || PALETTE[i % PALETTE.length];
      const label = String(s.name);
      lx -= label.length * 6.2 + 22;
      legend.appendChild(el("rect", { x: lx, y: 7, width: 10, height: 10, fill: color }));
      legend.appendChild(el("text", { x: lx + 14, y: 16 }, label));
    });
    if (series.length > 1 || opts.legend) svg.appendChild(legend);
    if (parent) parent.appendChild(svg);
    return svg;
  }

  /** Bar chart: values = [numbers]; opts: {labels, testid, max, highlight, percent, height}. */
  function bars(parent, values, opts = {}) {
    const width = opts.width || 360, height = opts.height || 160;
    const margin = { left: 8, right: 8, top: 18, bottom: 22 };
    const max = opts.max || Math.max(1e-12, ...values.filter((v) => isFinite(v)));
    const slot = (width - margin.left - margin.right) / Math.max(1, values.length);
    const svg = el("svg", { class: "chart bars", viewBox: `0 0 ${width} ${height}`, width, height, "data-testid": opts.testid });
    values.forEach((v, i) => {
      const h = Math.max(0, (v / max) * (height - margin.top - margin.bottom));
      const x = margin.left + i * slot + slot * 0.15;
      const y = height - margin.bottom - h;
      svg.appendChild(el("rect", {
        x, y, width: slot * 0.7, height: h, class: i === opts.highlight ? "bar hi" : "bar",
        "data-index": i, "data-value": v,
      }, el("title", {}, `${opts.labels ? opts.labels[i] : i}: ${opts.percent ? pct(v) : num(v)}`)));
      svg.appendChild(el("text", { x: x + slot * 0.35, y: height - 6, "text-anchor": "middle" }, opts.labels ? opts.labels[i] : String(i)));
    });
    if (opts.title) svg.appendChild(el("text", { x: margin.left, y: 12, class: "chart-title" }, opts.title));
    if (parent) parent.appendChild(svg);
    return svg;
  }

  // --- routing ------------------------------------------------------------------------------
  const Studio = {
    token, auth, api, events, el, withToken, views: {}, charts: { line, bars },
    format: { pct, num, duration, when },
    lastRun: null, // the run id last opened (views needing a run may default to it)
    go(hash) {
      if (location.hash === hash) route();
      else location.hash = hash;
    },
  };
  window.Studio = Studio;

  let cleanup = null;

  function parseHash() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [name, query] = hash.split("?", 2);
    const params = Object.fromEntries(new URLSearchParams(query || ""));
    return { name: name || "runs", params };
  }

  function renderNav(current) {
    const nav = document.getElementById("nav");
    nav.textContent = "";
    for (const [name, view] of Object.entries(Studio.views)) {
      if (view.hidden) continue;
      let href = `#/${name}`;
      if (view.needsRun && Studio.lastRun) href += `?run=${encodeURIComponent(Studio.lastRun)}`;
      nav.appendChild(el("a", { href, class: name === current ? "active" : null, "data-testid": `nav-${name}` }, view.title || name));
    }
  }

  function route() {
    if (typeof cleanup === "function") {
      try { cleanup(); } catch (err) { console.error(err); }
    }
    cleanup = null;
    const { name, params } = parseHash();
    if (params.run) Studio.lastRun = params.run;
    const view = Studio.views[name] || Studio.views.runs;
    renderNav(Studio.views[name] ? name : "runs");
    const root = document.getElementById("view");
    root.textContent = "";
    document.title = `${view.title || name} - digitlab studio`;
    try {
      cleanup = view.render(root, params) || null;
    } catch (err) {
      root.appendChild(el("p", { class: "error" }, String(err.message || err)));
    }
  }
  Studio.route = route;

  const errorBox = (root) => {
    const box = el("p", { class: "error", "data-testid": "error", hidden: true });
    root.appendChild(box);
    return (err) => {
      box.textContent = err ? String(err.message || err) : "";
      box.hidden = !err;
    };
  };

  // --- Runs ---------------------------------------------------------------------------------
  const COLUMNS = [
    ["name", "run"], ["status", "status"], ["dataset", "data"], ["model", "model"],
    ["epoch", "epoch"], ["best_val_accuracy", "best val"], ["test_accuracy", "test (95%)"],
    ["seconds", "time"], ["started", "started"],
  ];

  Studio.views.runs = {
    title: "Runs",
    render(root) {
      const state = { runs: [], sort: "started", desc: true, filter: "", status: "", kind: "" };
      const showError = errorBox(root);
      const filter = el("input", {
        type: "search", placeholder: "filter: name, data, model...", "data-testid": "runs-filter",
        oninput: (e) => { state.filter = e.target.value.toLowerCase(); draw(); },
      });
      const statusSelect = el("select", { "data-testid": "runs-status", onchange: (e) => { state.status = e.target.value; draw(); } },
        ["", "running", "finished", "stopped", "failed", "died"].map((s) => el("option", { value: s }, s || "any status")));
      const kindSelect = el("select", { onchange: (e) => { state.kind = e.target.value; draw(); } },
        [["", "runs and sweeps"], ["run", "runs"], ["sweep", "sweeps"]].map(([v, t]) => el("option", { value: v }, t)));
      const count = el("span", { class: "muted" });
      root.appendChild(el("div", { class: "toolbar" }, el("h1", {}, "Runs"), filter, statusSelect, kindSelect, count,
        el("a", { class: "button", href: "#/train" }, "New run")));
      const head = el("tr", {});
      const table = el("table", { class: "runs", "data-testid": "runs" }, el("thead", {}, head));
      const body = el("tbody", {});
      table.appendChild(body);
      root.appendChild(table);
      const empty = el("p", { class: "muted", hidden: true }, "No runs yet under the served folders. Start one on the Train page, or run `digitlab train`.");
      root.appendChild(empty);

      function drawHead() {
        head.textContent = "";
        for (const [key, label] of COLUMNS) {
          const mark = state.sort === key ? (state.desc ? " \u25be" : " \u25b4") : "";
          head.appendChild(el("th", {
            class: "sortable", "data-sort": key,
            onclick: () => { state.desc = state.sort === key ? !state.desc : key !== "name"; state.sort = key; draw(); },
          }, label + mark));
        }
      }

      function value(run, key) {
        const v = run[key];
        return v === null || v === undefined ? (typeof run.name === "string" && key === "name" ? "" : -Infinity) : v;
      }

      function draw() {
        drawHead();
        const text = state.filter;
        const rows = state.runs.filter((r) =>
          (!state.status || r.status === state.status) && (!state.kind || r.kind === state.kind) &&
          (!text || [r.name, r.dataset, r.model, r.status, r.kind].join(" ").toLowerCase().includes(text)));
        rows.sort((a, b) => {
          const va = value(a, state.sort), vb = value(b, state.sort);
          const c = va < vb ? -1 : va > vb ? 1 : 0;
          return state.desc ? -c : c;
        });
        body.textContent = "";
        for (const r of rows) {
          const interval = r.test_interval ? ` (${pct(r.test_interval[0], 1)}-${pct(r.test_interval[1], 1)})` : "";
          const tr = el("tr", {
            "data-testid": "run-row", "data-run-id": r.id, "data-status": r.status, class: `row ${r.kind}`,
            onclick: () => Studio.go(`#/run?run=${encodeURIComponent(r.id)}`),
          },
          el("td", {}, el("a", { href: `#/run?run=${encodeURIComponent(r.id)}`, onclick: (e) => e.stopPropagation() }, r.name),
            r.kind === "sweep" ? el("span", { class: "tag" }, "sweep") : null),
          el("td", { title: r.error || null }, el("span", { class: `badge ${r.status}` }, r.status)),
          el("td", {}, r.dataset || ""),
          el("td", {}, r.model || ""),
          el("td", { class: "num" }, r.epochs ? `${r.epoch}/${r.epochs}` : String(r.epoch ?? "")),
          el("td", { class: "num" }, pct(r.best_val_accuracy)),
          el("td", { class: "num" }, pct(r.test_accuracy) + interval),
          el("td", { class: "num" }, duration(r.seconds)),
          el("td", { class: "muted" }, when(r.started)));
          body.appendChild(tr);
        }
        count.textContent = `${rows.length} of ${state.runs.length}`;
        empty.hidden = state.runs.length > 0;
      }

      api("/api/runs").then((data) => { state.runs = data.runs; draw(); }, showError);
      const source = events("/api/events", (data, type) => {
        if (type === "runs") { state.runs = data.runs; showError(null); draw(); }
      });
      return () => source.close();
    },
  };

  // --- One run ------------------------------------------------------------------------------
  const keysEnding = (rows, suffix) => {
    const keys = new Set();
    for (const r of rows) for (const k of Object.keys(r)) if (k.endsWith(suffix)) keys.add(k);
    return [...keys];
  };
  const column = (rows, key) => rows.map((r) => (r[key] === undefined ? null : r[key]));

  function confusionTable(matrix) {
    const max = Math.max(1, ...matrix.flatMap((row, i) => row.filter((_, j) => j !== i)));
    const table = el("table", { class: "confusion", "data-testid": "confusion" },
      el("tr", {}, el("th", { class: "corner" }, "true \\ predicted"), matrix.map((_, j) => el("th", {}, String(j)))));
    matrix.forEach((row, i) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      table.appendChild(el("tr", {}, el("th", {}, String(i)), row.map((v, j) => {
        const alpha = i === j ? 0.15 + 0.5 * (v / total) : Math.min(0.9, v / max);
        return el("td", {
          class: i === j ? "diag" : "off", title: `true ${i}, predicted ${j}: ${v}`,
          style: { background: i === j ? `rgba(22,163,74,${alpha})` : (v ? `rgba(220,38,38,${alpha})` : "") },
        }, String(v));
      })));
    });
    return table;
  }

  function digitCanvas(item, shape) {
    const [h, w] = shape;
    const canvas = el("canvas", { width: w, height: h, class: "digit" });
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(w, h);
    item.pixels.forEach((v, i) => {
      image.data[4 * i] = image.data[4 * i + 1] = image.data[4 * i + 2] = 255 - v;
      image.data[4 * i + 3] = 255;
    });
    ctx.putImageData(image, 0, 0);
    const wrong = item.label !== item.predicted;
    return el("figure", { class: wrong ? "example wrong" : "example", title: `test #${item.index}` }, canvas,
      el("figcaption", {}, `${item.label}\u2192${item.predicted} ${(100 * item.probability).toFixed(0)}%`));
  }

  function renderSweep(root, data) {
    const rows = data.trials || [];
    root.appendChild(el("p", {}, `${(data.sweep.trials || []).length} trials; ${rows.length} recorded.`,
      data.summary_html ? el("a", { href: withToken(`/api/report?run=${encodeURIComponent(data.id)}`), target: "_blank", rel: "noopener" }, " summary.html") : null));
    const table = el("table", { class: "runs", "data-testid": "trials" },
      el("tr", {}, ["trial", "status", "val accuracy", "test accuracy", "time"].map((t) => el("th", {}, t))));
    for (const r of rows) {
      table.appendChild(el("tr", {},
        el("td", {}, el("a", { href: `#/run?run=${encodeURIComponent(data.id + "/trials/" + r.id)}` }, r.id)),
        el("td", {}, el("span", { class: `badge ${r.status === "done" ? "finished" : "failed"}`, title: r.reason || "" }, r.status)),
        el("td", { class: "num" }, pct(r.val_accuracy)), el("td", { class: "num" }, pct(r.test_accuracy)),
        el("td", { class: "num" }, duration(r.seconds))));
    }
    root.appendChild(table);
  }

  Studio.views.run = {
    title: "Run",
    hidden: true,
    render(root, params) {
      const id = params.run;
      if (!id) { Studio.go("#/runs"); return null; }
      const showError = errorBox(root);
      const title = el("h1", {}, id.split("/").slice(1).join("/") || id);
      const statusSlot = el("span", {});
      const info = el("span", { class: "muted" });
      const stop = el("button", { "data-testid": "stop-run", class: "danger", hidden: true, onclick: () => act("stop") }, "Stop");
      const resume = el("button", { "data-testid": "resume-run", hidden: true, onclick: () => act("resume") }, "Resume");
      const links = el("span", { class: "links" });
      root.appendChild(el("div", { class: "toolbar" }, title, statusSlot, info, stop, resume, links));
      const content = el("div", {});
      root.appendChild(content);
      let data = null;
      let source = null;
      let chartsBox = null, alarmsBox = null;

      async function act(what) {
        try {
          showError(null);
          await api(`/api/${what}?run=${encodeURIComponent(id)}`, { method: "POST" });
          info.textContent = what === "stop" ? "stopping after this batch (a checkpoint is written)" : "resuming";
        } catch (err) { showError(err); }
      }

      function drawStatus() {
        const s = data.status || {};
        statusSlot.textContent = "";
        statusSlot.appendChild(badge(s.state || "unknown"));
        const parts = [];
        if (s.epochs) parts.push(`epoch ${s.epoch} of ${s.epochs}`);
        if (s.updated) parts.push(`updated ${when(s.updated)}`);
        if (s.error) parts.push(s.error);
        info.textContent = parts.join(" \u00b7 ");
        stop.hidden = s.state !== "running";
        resume.hidden = !(data.checkpoint && ["stopped", "died", "failed"].includes(s.state));
        links.textContent = "";
        for (const [name, view] of Object.entries(Studio.views)) {
          if (view.needsRun) links.appendChild(el("a", { class: "button light", href: `#/${name}?run=${encodeURIComponent(id)}` }, view.title || name));
        }
        if (data.report || s.report) {
          links.appendChild(el("a", { class: "button light", href: withToken(`/api/report?run=${encodeURIComponent(id)}`), target: "_blank", rel: "noopener", "data-testid": "report-link" }, "report.html"));
        }
      }

      function drawCharts() {
        const rows = data.history;
        chartsBox.textContent = "";
        const grid = el("div", { class: "charts" });
        chartsBox.appendChild(grid);
        const card = (t, ...kids) => grid.appendChild(el("div", { class: "card" }, t ? el("h3", {}, t) : null, ...kids));
        card("Loss", line(null, [
          { name: "train", values: column(rows, "train_loss") },
          { name: "validation", values: column(rows, "val_loss") },
        ], { testid: "loss-chart", log: rows.some((r) => r.train_loss > 0) }));
        card("Accuracy", line(null, [
          { name: "train", values: column(rows, "train_accuracy") },
          { name: "validation", values: column(rows, "val_accuracy") },
        ], { testid: "accuracy-chart", percent: true }));
        card("Learning rate", line(null, [{ name: "learning rate", values: column(rows, "learning_rate") }], { testid: "lr-chart" }));
        const monitors = [
          ["Weight norms", ".norm", false, true], ["Gradient norms", ".grad_norm", false, true],
          ["Update / weight", ".update_ratio", false, true], ["Dead units (share)", ".dead", true, false],
          ["Saturated units (share)", ".saturated", true, false],
        ];
        for (const [label, suffix, percent, log] of monitors) {
          const keys = keysEnding(rows, suffix).filter((k) => !(suffix === ".norm" && k.endsWith(".grad_norm")));
          if (!keys.length) continue;
          card(label, line(null, keys.map((k) => ({ name: k.slice(0, -suffix.length), values: column(rows, k) })),
            { percent, log: log && rows.some((r) => keys.some((k) => r[k] > 0)), points: false, legend: true, testid: `monitor${suffix.replace(".", "-")}` }));
        }
      }

      function drawAlarms(findings) {
        alarmsBox.textContent = "";
        const list = (findings || []);
        alarmsBox.appendChild(el("h2", {}, "Alarms"));
        if (!list.length) {
          alarmsBox.appendChild(el("p", { class: "muted" }, "No alarms: nothing the monitors watch for went wrong (so far)."));
          return;
        }
        for (const f of list) {
          alarmsBox.appendChild(el("div", { class: `alarm ${f.severity}`, "data-testid": "alarm" },
            el("strong", {}, f.kind), ` (epoch ${f.epoch}): ${f.message}`,
            f.causes && f.causes.length ? el("div", { class: "small" }, "likely causes: " + f.causes.join("; ")) : null,
            f.remedies && f.remedies.length ? el("div", { class: "small" }, "usual remedies: " + f.remedies.join("; ")) : null));
        }
      }

      function drawResults() {
        const box = el("div", { class: "results" });
        const m = data.metrics;
        if (m) {
          const table = el("table", { class: "metrics", "data-testid": "metrics" },
            el("tr", {}, ["split", "n", "loss", "accuracy", "95% interval"].map((t) => el("th", {}, t))));
          for (const [key, label] of [["train", "train"], ["val", "validation"], ["test", "test"], ["test_all", "val + test"]]) {
            const s = m[key];
            if (!s || typeof s !== "object") continue;
            table.appendChild(el("tr", {}, el("td", {}, label), el("td", { class: "num" }, String(s.n)),
              el("td", { class: "num" }, num(s.loss)), el("td", { class: "num" }, pct(s.accuracy)),
              el("td", { class: "num" }, s.accuracy_ci95 ? `${pct(s.accuracy_ci95[0])} - ${pct(s.accuracy_ci95[1])}` : "")));
          }
          box.appendChild(el("div", { class: "card" }, el("h3", {}, "Results"), table));
        }
        if (data.confusion) {
          box.appendChild(el("div", { class: "card" }, el("h3", {}, "Test confusion matrix"), confusionTable(data.confusion)));
          const perClass = data.confusion.map((row, i) => row[i] / Math.max(1, row.reduce((a, b) => a + b, 0)));
          const worst = perClass.indexOf(Math.min(...perClass));
          box.appendChild(el("div", { class: "card" }, el("h3", {}, "Test accuracy per class (worst highlighted)"),
            bars(null, perClass, { testid: "per-class", max: 1, percent: true, highlight: worst, labels: perClass.map((_, i) => String(i)) })));
        }
        if (data.examples) {
          for (const [group, label] of [["hardest", "Hardest test digits (true\u2192predicted, confidence)"], ["misclassified", "More misclassified test digits"]]) {
            const items = data.examples[group] || [];
            if (!items.length) continue;
            box.appendChild(el("div", { class: "card wide" }, el("h3", {}, label),
              el("div", { class: "examples", "data-testid": group }, items.map((it) => digitCanvas(it, data.examples.shape)))));
          }
        }
        const extra = (data.plots || []).filter((p) => ["weights.png", "scatter.png"].includes(p));
        if (extra.length) {
          box.appendChild(el("div", { class: "card wide" }, el("h3", {}, "From the report"),
            extra.map((p) => el("img", { class: "plot", alt: p, src: withToken(`/api/plot?run=${encodeURIComponent(id)}&name=${encodeURIComponent(p)}`) }))));
        }
        if (data.config) {
          const rows = Object.entries(data.config).filter(([, v]) => v !== null && !(Array.isArray(v) && !v.length));
          box.appendChild(el("div", { class: "card" }, el("h3", {}, "Config"),
            el("table", { class: "config", "data-testid": "config" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v)))))));
        }
        return box;
      }

      function drawAll() {
        content.textContent = "";
        if (data.kind === "sweep") { renderSweep(content, data); return; }
        drawStatus();
        chartsBox = el("section", {});
        alarmsBox = el("section", { class: "alarms", "data-testid": "alarms" });
        content.appendChild(chartsBox);
        content.appendChild(alarmsBox);
        content.appendChild(drawResults());
        drawCharts();
        drawAlarms(data.diagnostics);
      }

      async function load() {
        try {
          data = await api(`/api/run?run=${encodeURIComponent(id)}`);
          showError(null);
        } catch (err) { showError(err); return; }
        drawAll();
        if (source) source.close();
        if (data.kind === "sweep") return;
        source = events(`/api/events?run=${encodeURIComponent(id)}&after=${data.history.length}`, (msg, type) => {
          if (type === "history") {
            data.history[msg.index] = msg.record;
            data.history.length = msg.index + 1;
            drawCharts();
            if (msg.diagnostics) drawAlarms(msg.diagnostics);
          } else if (type === "reset") {
            load();
          } else if (type === "status") {
            const before = data.status && data.status.state;
            data.status = msg;
            drawStatus();
            if (before && before !== msg.state && msg.state !== "running") load(); // results arrived
            else if (msg.report && !data.report) load();
          }
        });
      }
      load();
      return () => source && source.close();
    },
  };

  // --- Train --------------------------------------------------------------------------------
  const FIELDS = [
    ["data", "dataset", "select", ["digits", "mnist", "idx", "folder", "csv"]],
    ["data_dir", "data folder or file (idx, folder, csv)", "text"],
    ["hidden_sizes", "hidden sizes", "text", "e.g. 100 or 256,128 (ignored when the recipe has layers)"],
    ["activation", "activation", "choice", "activations"],
    ["optimizer", "optimizer", "choice", "optimizers"],
    ["learning_rate", "learning rate", "number"],
    ["learning_rate_schedule", "learning rate schedule", "choice", "schedules"],
    ["batch_size", "batch size", "number"],
    ["epochs", "epochs", "number"],
    ["augment", "augmentation", "text", "KEY=VALUE, ... e.g. shift=2,rotate=10"],
    ["seed", "seed", "number"],
  ];

  const OLD_NAMES = { hidden: "hidden_sizes", lr: "learning_rate", lr_schedule: "learning_rate_schedule" };
  const entryName = (v) => (v && typeof v === "object" ? v.name : v);

  Studio.views.train = {
    title: "Train",
    render(root) {
      root.appendChild(el("h1", {}, "Train a network"));
      const showError = errorBox(root);
      const form = el("form", { class: "train", "data-testid": "train-form", onsubmit: (e) => { e.preventDefault(); start(); } });
      root.appendChild(form);
      const recipeSelect = el("select", { name: "recipe", "data-testid": "recipe" }, el("option", { value: "" }, "(defaults)"));
      const description = el("p", { class: "muted small" });
      form.appendChild(el("label", {}, el("span", {}, "recipe"), recipeSelect));
      form.appendChild(description);
      const inputs = {};
      let recipes = {}, choices = {}, base = {};

      for (const [key, label, kind, extra] of FIELDS) {
        let input;
        if (kind === "select") input = el("select", { name: key }, extra.map((v) => el("option", { value: v }, v)));
        else if (kind === "choice") input = el("input", { name: key, list: `list-${extra}`, autocomplete: "off" });
        else input = el("input", { name: key, type: kind === "number" ? "text" : "text", inputmode: kind === "number" ? "decimal" : null, placeholder: kind === "text" ? extra || "" : "" });
        inputs[key] = input;
        form.appendChild(el("label", {}, el("span", {}, label), input));
      }
      const more = el("textarea", { name: "more", rows: 4, placeholder: '{"l2": 0.0001, "dropout": 0.2} - any other config keys as JSON', "data-testid": "config-json" });
      form.appendChild(el("label", { class: "wide" }, el("span", {}, "more keys (JSON)"), more));
      const startButton = el("button", { type: "submit", "data-testid": "start-run" }, "Start run");
      form.appendChild(el("div", { class: "actions" }, startButton,
        el("span", { class: "muted small" }, "Runs as a separate `digitlab train` process: closing this page never stops it.")));

      function fill(given) {
        // older key names (recipes may still use them) shown under the full ones
        const values = {};
        for (const [key, value] of Object.entries(given)) values[OLD_NAMES[key] || key] = value;
        base = values;
        for (const [key] of FIELDS) {
          let v = values[key];
          if (key === "hidden_sizes" && Array.isArray(v)) v = v.join(",");
          else if (key === "augment" && v && typeof v === "object") v = Object.entries(v).map(([a, b]) => `${a}=${b}`).join(",");
          else v = entryName(v);
          inputs[key].value = v === undefined || v === null ? "" : String(v);
        }
        const rest = Object.fromEntries(Object.entries(values).filter(([k]) => !FIELDS.some(([f]) => f === k)));
        more.value = Object.keys(rest).length ? JSON.stringify(rest, null, 1) : "";
      }

      function collect() {
        const values = {};
        for (const [key, , kind] of FIELDS) {
          const raw = inputs[key].value.trim();
          if (!raw) continue;
          if (key === "hidden_sizes") values.hidden_sizes = raw.split(",").map((s) => s.trim()).filter(Boolean).map((s) => (/^-?\d+$/.test(s) ? Number(s) : s));
          else if (key === "augment") {
            values.augment = Object.fromEntries(raw.split(",").filter(Boolean).map((pair) => {
              const [k, v] = pair.split("=");
              return [k.trim(), v !== undefined && v.trim() !== "" && !isNaN(Number(v)) ? Number(v) : (v || "").trim()];
            }));
          } else if (kind === "number") values[key] = isNaN(Number(raw)) ? raw : Number(raw);
          else if (kind === "choice") {
            const old = base[key];
            values[key] = old && typeof old === "object" && old.name === raw ? old : raw;
          } else values[key] = raw;
        }
        if (more.value.trim()) {
          let extra;
          try { extra = JSON.parse(more.value); } catch (err) { throw new Error("more keys: not valid JSON"); }
          if (!extra || typeof extra !== "object" || Array.isArray(extra)) throw new Error("more keys: expected a JSON object");
          Object.assign(values, extra);
        }
        return values;
      }

      async function start() {
        showError(null);
        startButton.disabled = true;
        try {
          const config = collect();
          const result = await api("/api/train", { json: { recipe: recipeSelect.value || null, config } });
          Studio.go(`#/run?run=${encodeURIComponent(result.run)}`);
        } catch (err) {
          showError(err);
        } finally {
          startButton.disabled = false;
        }
      }

      recipeSelect.addEventListener("change", () => {
        const r = recipes[recipeSelect.value];
        description.textContent = r ? r.description : "";
        fill(r ? r.values : choices.defaults || {});
      });

      Promise.all([api("/api/recipes"), api("/api/choices")]).then(([r, c]) => {
        choices = c;
        for (const recipe of r.recipes) {
          recipes[recipe.name] = recipe;
          recipeSelect.appendChild(el("option", { value: recipe.name }, recipe.name));
        }
        for (const [name, list] of Object.entries(c)) {
          if (Array.isArray(list)) form.appendChild(el("datalist", { id: `list-${name}` }, list.map((v) => el("option", { value: v }))));
        }
        fill(c.defaults || {});
      }, showError);
      return null;
    },
  };

  document.addEventListener("DOMContentLoaded", () => {
    window.addEventListener("hashchange", route);
    route();
  });
})();
