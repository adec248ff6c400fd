// digitlab studio: the Draw view (a canvas in front of a trained model), plus the small pixel
// helpers inside.js and compare.js share (Studio.pixels). Pointer Events cover mouse, touch
// and pen. One prediction request is in flight at a time; strokes made meanwhile are sent
// when it returns, so the bars follow the pen without queueing up requests.
(function () {
  "use strict";
  const Studio = window.Studio;
  const { el, api } = Studio;

  // --- styles for the draw, inside and compare views (studio.css belongs to the shell) ---
  document.head.appendChild(el("style", {}, `
.draw-grid { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
canvas.draw { background: #000; border-radius: 8px; touch-action: none; cursor: crosshair; display: block; }
canvas.pixels { image-rendering: pixelated; border: 1px solid var(--line); background: #000; display: block; }
.answer { font-size: 64px; font-weight: 700; line-height: 1; color: var(--accent); min-height: 64px; }
.probs { display: flex; flex-direction: column; gap: 3px; width: 260px; }
.prob { display: grid; grid-template-columns: 14px 1fr 56px; gap: 6px; align-items: center; font-variant-numeric: tabular-nums; }
.prob .track { background: #eef2ff; height: 14px; border-radius: 3px; overflow: hidden; }
.prob .fill { background: #93c5fd; height: 100%; width: 0; transition: width 0.12s; }
.prob.best .fill { background: var(--accent); }
.prob .value { text-align: right; font-size: 12px; color: var(--muted); }
.drawing-tools { display: flex; gap: 8px; margin-top: 8px; align-items: center; flex-wrap: wrap; }
.drawing-tools label.button input { display: none; }
.layer { margin-bottom: 14px; }
.layer h3 span { font-weight: 400; }
canvas.strip { image-rendering: pixelated; cursor: pointer; border: 1px solid var(--line); display: block; max-width: 100%; }
.maps, .weights, .digits { display: flex; flex-wrap: wrap; gap: 4px; }
.maps canvas, .weights canvas { image-rendering: pixelated; border: 2px solid transparent; }
.maps canvas { cursor: pointer; }
.maps canvas.off { border-color: var(--accent); opacity: 0.4; }
.maps canvas.dead { border-color: #9ca3af; }
.maps canvas.saturated { border-color: var(--warn); }
.legend-row { display: flex; gap: 14px; font-size: 12px; color: var(--muted); margin: 4px 0; }
.legend-row i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: -1px; }
table.compare td, table.compare th { padding: 4px 8px; border-bottom: 1px solid var(--line); text-align: right; font-variant-numeric: tabular-nums; }
table.compare th:first-child, table.compare td:first-child { text-align: left; }
td.better { color: var(--ok); } td.worse { color: var(--bad); }
.pick { display: flex; flex-direction: column; gap: 2px; max-height: 260px; overflow: auto; background: var(--card); border: 1px solid var(--line); padding: 8px; border-radius: 6px; }
.digits figure { margin: 0; text-align: center; font-size: 11px; }
.digits canvas { width: 42px; height: 42px; image-rendering: pixelated; display: block; border: 1px solid var(--line); }
.verdict { font-weight: 600; }
`));

  // --- pixel helpers shared by the model views ---
  /** A canvas showing a 2-D array of 0..1 values as grey levels (1 = white), `scale` px each. */
  function grayCanvas(rows, scale = 8, attrs = {}) {
    const height = rows.length, width = rows[0].length;
    const canvas = el("canvas", Object.assign({ width, height, class: "pixels" }, attrs));
    canvas.style.width = `${width * scale}px`;
    canvas.style.height = `${height * scale}px`;
    paint(canvas, rows.flat(), (v) => {
      const g = Math.round(255 * Math.min(1, Math.max(0, v)));
      return [g, g, g];
    });
    return canvas;
  }

  /** Fill a canvas's pixels from a flat list through color(value) -> [r, g, b]. */
  function paint(canvas, values, color) {
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(canvas.width, canvas.height);
    values.forEach((v, i) => {
      const [r, g, b] = color(v);
      image.data.set([r, g, b, 255], 4 * i);
    });
    ctx.putImageData(image, 0, 0);
  }

  /** Blue (negative) - white (0) - red (positive) for v in -1..1. */
  function diverging(v) {
    const t = Math.min(1, Math.abs(v));
    const fade = Math.round(255 * (1 - t));
    return v >= 0 ? [255, fade, fade] : [fade, fade, 255];
  }

  /** Black - yellow heat for v in 0..1. */
  function heat(v) {
    const t = Math.min(1, Math.max(0, v));
    return [Math.round(255 * Math.min(1, 2 * t)), Math.round(255 * Math.max(0, 2 * t - 1)), Math.round(80 * t)];
  }

  /** Ten probability bars (data-testid probabilities / probability) and their update(). */
  function probabilityBars() {
    const box = el("div", { class: "probs", "data-testid": "probabilities" });
    const rows = [];
    for (let digit = 0; digit < 10; digit++) {
      const fill = el("div", { class: "fill" });
      const value = el("span", { class: "value" }, "");
      const row = el("div", { class: "prob", "data-testid": "probability", "data-digit": digit, "data-value": "" },
        el("b", {}, String(digit)), el("div", { class: "track" }, fill), value);
      rows.push({ row, fill, value });
      box.appendChild(row);
    }
    box.update = (probs) => {
      const best = probs ? probs.indexOf(Math.max(...probs)) : -1;
      rows.forEach(({ row, fill, value }, digit) => {
        const p = probs ? probs[digit] : null;
        row.dataset.value = p === null ? "" : String(p);
        row.classList.toggle("best", digit === best);
        fill.style.width = p === null ? "0" : `${(100 * p).toFixed(1)}%`;
        value.textContent = p === null ? "" : `${(100 * p).toFixed(1)}%`;
      });
    };
    return box;
  }

  /** A select of finished runs; calls onPick(id) on change; picks `current` or the newest. */
  function runPicker(current, onPick) {
    const select = el("select", { "data-testid": "run-picker", onchange: () => onPick(select.value) });
    api("/api/runs").then((data) => {
      const runs = data.runs.filter((r) => r.kind === "run" && r.status === "finished");
      if (current && !runs.some((r) => r.id === current)) runs.unshift({ id: current, name: current });
      for (const r of runs) {
        const label = [r.name, r.dataset, r.model, r.test_accuracy != null ? Studio.format.pct(r.test_accuracy) : ""]
          .filter(Boolean).join(" \u00b7 ");
        select.appendChild(el("option", { value: r.id, selected: r.id === current }, label));
      }
      if (!runs.length) select.appendChild(el("option", { value: "" }, "no finished runs yet"));
      if (!current && runs.length) onPick(runs[0].id);
    }, () => {});
    return select;
  }

  Studio.pixels = { grayCanvas, paint, diverging, heat, probabilityBars, runPicker };

  // --- the Draw view ---
  const SIZE = 280; // canvas pixels; the server fits the ink's box whatever the size
  const PEN = { mnist: 18, digits: 30 }; // the 8x8 digits' 32x32 bitmaps had thick strokes

  Studio.views.draw = {
    title: "Draw",
    needsRun: true,
    render(root, params) {
      let runId = params.run || Studio.lastRun || "";
      const strokes = []; // each a list of [x, y] canvas points
      let upload = null; // an uploaded PNG (Blob) shown instead of strokes
      let pen = PEN.mnist;
      let busy = false, dirty = false, alive = true;

      const error = el("p", { class: "error", "data-testid": "error", hidden: true });
      const showError = (err) => { error.textContent = err ? String(err.message || err) : ""; error.hidden = !err; };
      const canvas = el("canvas", { class: "draw", width: SIZE, height: SIZE, "data-testid": "draw-canvas" });
      const ctx = canvas.getContext("2d");
      const seen = el("div", { "data-testid": "model-input-box" });
      const answer = el("div", { class: "answer", "data-testid": "answer" }, "");
      const bars = probabilityBars();
      const note = el("p", { class: "muted small" }, "Draw a digit with the mouse, a finger or a pen.");
      const file = el("input", { type: "file", accept: "image/png", "data-testid": "upload-png" });
      const toInside = el("a", { class: "button light", href: "#/inside" }, "Look inside");

      root.appendChild(el("div", { class: "toolbar" }, el("h1", {}, "Draw"),
        runPicker(runId, (id) => { runId = id; Studio.lastRun = id; setup(); }), toInside));
      root.appendChild(error);
      root.appendChild(el("div", { class: "draw-grid" },
        el("div", { class: "card" }, canvas,
          el("div", { class: "drawing-tools" },
            el("button", { "data-testid": "clear-drawing", onclick: clear }, "Clear"),
            el("button", { "data-testid": "undo-drawing", onclick: undo }, "Undo"),
            el("label", { class: "button light" }, "Upload PNG", file)),
          note),
        el("div", { class: "card" }, el("h3", {}, "What the network sees"), seen),
        el("div", { class: "card" }, el("h3", {}, "Answer"), answer, el("h3", {}, "Probabilities"), bars)));

      function redraw() {
        ctx.fillStyle = "#000";
        ctx.fillRect(0, 0, SIZE, SIZE);
        ctx.strokeStyle = "#fff";
        ctx.fillStyle = "#fff";
        ctx.lineWidth = pen;
        ctx.lineCap = "round";
        ctx.lineJoin = "round";
        for (const points of strokes) {
          ctx.beginPath();
          if (points.length === 1) {
            ctx.arc(points[0][0], points[0][1], pen / 2, 0, 2 * Math.PI);
            ctx.fill();
            continue;
          }
          ctx.moveTo(points[0][0], points[0][1]);
          for (const [x, y] of points.slice(1)) ctx.lineTo(x, y);
          ctx.stroke();
        }
      }

      function showResult(result) {
        seen.textContent = "";
        if (result) seen.appendChild(grayCanvas(result.input, Math.max(4, Math.floor(168 / result.input.length)), { "data-testid": "model-input" }));
        answer.textContent = result ? String(result.answer) : "";
        bars.update(result ? result.probabilities : null);
      }

      function pixels() {
        const data = ctx.getImageData(0, 0, SIZE, SIZE).data;
        const gray = new Array(SIZE * SIZE);
        for (let i = 0; i < gray.length; i++) gray[i] = data[4 * i]; // white ink: the red channel
        return { pixels: gray, width: SIZE, height: SIZE };
      }

      async function send() {
        if (!runId || !alive) return;
        if (busy) { dirty = true; return; }
        if (!upload && !strokes.length) { showResult(null); Studio.drawing = null; return; }
        busy = true;
        dirty = false;
        try {
          const path = `/api/predict?run=${encodeURIComponent(runId)}`;
          let result;
          if (upload) {
            result = await api(path, { method: "POST", body: upload, headers: { "Content-Type": "image/png" } });
          } else {
            Studio.drawing = pixels(); // Inside can look at the same drawing
            result = await api(path, { json: Studio.drawing });
          }
          showError(null);
          if (alive) showResult(result); // at most one request behind; the next follows
        } catch (err) {
          showError(err);
        } finally {
          busy = false;
          if (dirty && alive) send();
        }
      }

      function clear() {
        strokes.length = 0;
        upload = null;
        file.value = "";
        redraw();
        send();
      }

      function undo() {
        if (upload) { clear(); return; }
        strokes.pop();
        redraw();
        send();
      }

      file.addEventListener("change", () => {
        const chosen = file.files && file.files[0];
        if (!chosen) return;
        strokes.length = 0;
        upload = chosen;
        const url = URL.createObjectURL(chosen);
        const image = new Image();
        image.onload = () => {
          redraw();
          const scale = Math.min(SIZE / image.width, SIZE / image.height);
          ctx.drawImage(image, (SIZE - image.width * scale) / 2, (SIZE - image.height * scale) / 2, image.width * scale, image.height * scale);
          URL.revokeObjectURL(url);
        };
        image.src = url;
        Studio.drawing = null;
        send();
      });

      // Pointer Events: one stroke per pointer press, coalesced moves for smooth lines
      let drawing = false;
      const at = (event) => {
        const box = canvas.getBoundingClientRect();
        return [(event.clientX - box.left) * (SIZE / box.width), (event.clientY - box.top) * (SIZE / box.height)];
      };
      canvas.addEventListener("pointerdown", (event) => {
        if (event.button !== undefined && event.button > 0) return;
        event.preventDefault();
        if (upload) { upload = null; file.value = ""; }
        canvas.setPointerCapture(event.pointerId);
        drawing = true;
        strokes.push([at(event)]);
        redraw();
        send();
      });
      canvas.addEventListener("pointermove", (event) => {
        if (!drawing) return;
        const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
        for (const move of moves.length ? moves : [event]) strokes[strokes.length - 1].push(at(move));
        redraw();
        send();
      });
      const end = () => {
        if (!drawing) return;
        drawing = false;
        send();
      };
      canvas.addEventListener("pointerup", end);
      canvas.addEventListener("pointercancel", end);

      async function setup() {
        toInside.setAttribute("href", `#/inside?run=${encodeURIComponent(runId)}&source=drawing`);
        if (!runId) { note.textContent = "No finished run to draw for yet: train one first."; return; }
        try {
          const run = await api(`/api/run?run=${encodeURIComponent(runId)}`);
          const data = (run.config && run.config.data) || "mnist";
          pen = data === "digits" ? PEN.digits : PEN.mnist;
          const hidden = run.config && (run.config.hidden_sizes || run.config.hidden);  // older runs: hidden
          note.textContent = `Draw a digit with the mouse, a finger or a pen. Model: ${data}` +
            (hidden && hidden.length ? `, hidden ${hidden.join("-")}` : "") + ".";
        } catch (err) {
          showError(err);
        }
        redraw();
        send();
      }

      redraw();
      showResult(null);
      if (runId) setup();
      return () => { alive = false; };
    },
  };
})();
