// digitlab studio: the Inside view. For the drawing from Draw or a test digit: every layer's
// activations (heat strips; feature maps for convolutions), the first layer's weights as
// images, the units that push the answer up most, dead and saturated units marked. Click a
// unit (or a feature map) to switch it off and see the answer change; click again to restore.
(function () {
  "use strict";
  const Studio = window.Studio;
  const { el, api } = Studio;
  const P = Studio.pixels;
  const CELL = 10; // pixels per unit in a heat strip
  const PER_ROW = 50; // units per row of a strip
  const OFF = [37, 99, 235]; // a switched-off unit (blue: apart from the heat colours)

  Studio.views.inside = {
    title: "Inside",
    needsRun: true,
    render(root, params) {
      let runId = params.run || Studio.lastRun || "";
      let source = params.source === "drawing" && Studio.drawing ? "drawing" : "test";
      let index = Number(params.index || 0);
      const off = {}; // node -> Set of units switched off
      let weightsShown = false, alive = true, busy = false, again = false;

      const error = el("p", { class: "error", "data-testid": "error", hidden: true });
      const showError = (err) => { error.textContent = err ? String(err.message || err) : ""; error.hidden = !err; };
      const indexInput = el("input", { type: "number", min: 0, value: index, style: { width: "90px" }, "data-testid": "test-index" });
      const useDrawing = el("button", { class: "button light", onclick: () => { source = "drawing"; refresh(); } }, "Use my drawing");
      const useTest = el("button", { class: "button light", onclick: () => { source = "test"; index = Number(indexInput.value) || 0; refresh(); } }, "Show test digit");
      const step = (d) => () => { source = "test"; index = Math.max(0, index + d); indexInput.value = index; refresh(); };
      const restore = el("button", { class: "button light", onclick: () => { for (const k of Object.keys(off)) delete off[k]; refresh(); } }, "All units on");
      const what = el("span", { class: "muted" });
      root.appendChild(el("div", { class: "toolbar" }, el("h1", {}, "Inside"),
        P.runPicker(runId, (id) => { runId = id; Studio.lastRun = id; weightsShown = false; for (const k of Object.keys(off)) delete off[k]; refresh(); }),
        useDrawing, el("span", {}, "test digit"), el("button", { class: "button light", onclick: step(-1) }, "\u2039"),
        indexInput, el("button", { class: "button light", onclick: step(1) }, "\u203a"), useTest, restore, what));
      root.appendChild(error);

      const inputBox = el("div", {});
      const answerBox = el("div", { class: "answer", "data-testid": "answer" });
      const baseline = el("p", { class: "muted small" });
      const bars = P.probabilityBars();
      const topBox = el("div", { "data-testid": "top-units" });
      const layersBox = el("div", { "data-testid": "inside-layers" });
      const weightsBox = el("div", { "data-testid": "first-weights" });
      root.appendChild(el("div", { class: "draw-grid" },
        el("div", { class: "card" }, el("h3", {}, "Input the network sees"), inputBox),
        el("div", { class: "card" }, el("h3", {}, "Answer"), answerBox, baseline, bars),
        el("div", { class: "card" }, el("h3", {}, "Units pushing the answer up (activation \u00d7 outgoing weight)"), topBox)));
      root.appendChild(el("div", { class: "card", style: { marginTop: "12px" } },
        el("h2", {}, "Layers"),
        el("div", { class: "legend-row" },
          el("span", {}, el("i", { style: { background: "#facc15" } }), "activation (heat, scaled per layer)"),
          el("span", {}, el("i", { style: { background: "#2563eb" } }), "switched off"),
          el("span", {}, el("i", { style: { background: "#9ca3af" } }), "dead on the test digits"),
          el("span", {}, el("i", { style: { background: "#d97706" } }), "saturated"),
          el("span", {}, "click a unit to switch it off or on")),
        layersBox));
      root.appendChild(el("div", { class: "card", style: { marginTop: "12px" } },
        el("h2", {}, "First layer's weights"), el("p", { class: "muted small" }, "red: positive, blue: negative, each image scaled by its largest weight"), weightsBox));

      function toggle(layer, unit) {
        const set = off[layer] || (off[layer] = new Set());
        if (set.has(unit)) set.delete(unit); else set.add(unit);
        if (!set.size) delete off[layer];
        refresh();
      }

      function body() {
        const units = Object.fromEntries(Object.entries(off).map(([k, s]) => [k, [...s]]));
        const extra = { off: units, weights: !weightsShown };
        if (source === "drawing" && Studio.drawing) return Object.assign({}, Studio.drawing, extra);
        return Object.assign({ test_index: index }, extra);
      }

      function strip(layer) {
        const values = layer.values;
        const top = Math.max(1e-9, ...values.map(Math.abs));
        const perRow = Math.min(values.length, PER_ROW);
        const rows = Math.ceil(values.length / perRow);
        const canvas = el("canvas", { class: "strip", width: perRow * CELL, height: rows * CELL, "data-layer": layer.name });
        const ctx = canvas.getContext("2d");
        const dead = new Set(layer.dead), saturated = new Set(layer.saturated), switched = new Set(layer.off);
        values.forEach((v, i) => {
          const x = (i % perRow) * CELL, y = Math.floor(i / perRow) * CELL;
          const [r, g, b] = switched.has(i) ? OFF : P.heat(Math.abs(v) / top);
          ctx.fillStyle = `rgb(${r},${g},${b})`;
          ctx.fillRect(x, y, CELL, CELL);
          if (dead.has(i) || saturated.has(i)) {
            ctx.strokeStyle = dead.has(i) ? "#9ca3af" : "#d97706";
            ctx.lineWidth = 1.5;
            ctx.strokeRect(x + 0.75, y + 0.75, CELL - 1.5, CELL - 1.5);
          }
        });
        canvas.addEventListener("click", (event) => {
          const box = canvas.getBoundingClientRect();
          const column = Math.floor((event.clientX - box.left) / (box.width / perRow));
          const row = Math.floor((event.clientY - box.top) / (box.height / rows));
          const unit = row * perRow + column;
          if (unit >= 0 && unit < values.length) toggle(layer.name, unit);
        });
        canvas.title = `${layer.name}: ${values.length} units; click one to switch it off`;
        return canvas;
      }

      function maps(layer) {
        const box = el("div", { class: "maps" });
        const all = layer.maps.flat(2);
        const top = Math.max(1e-9, ...all.map(Math.abs));
        const dead = new Set(layer.dead), saturated = new Set(layer.saturated), switched = new Set(layer.off);
        layer.maps.forEach((map, channel) => {
          const canvas = el("canvas", { width: map[0].length, height: map.length, title: `${layer.name} channel ${channel}` });
          canvas.style.width = `${Math.max(36, map[0].length * 3)}px`;
          canvas.style.height = `${Math.max(36, map.length * 3)}px`;
          P.paint(canvas, map.flat(), (v) => P.heat(Math.abs(v) / top));
          if (switched.has(channel)) canvas.classList.add("off");
          else if (dead.has(channel)) canvas.classList.add("dead");
          else if (saturated.has(channel)) canvas.classList.add("saturated");
          canvas.addEventListener("click", () => toggle(layer.name, channel));
          box.appendChild(canvas);
        });
        return box;
      }

      function drawLayers(layers) {
        layersBox.textContent = "";
        for (const layer of layers) {
          const kind = layer.activation ? `${layer.kind} (${layer.activation})` : layer.kind;
          const notes = [`${layer.shape.join("\u00d7")}`];
          if (layer.dead.length) notes.push(`${layer.dead.length} dead`);
          if (layer.saturated.length) notes.push(`${layer.saturated.length} saturated`);
          if (layer.off.length) notes.push(`${layer.off.length} off`);
          layersBox.appendChild(el("div", { class: "layer", "data-testid": "inside-layer", "data-layer": layer.name },
            el("h3", {}, `${layer.name} `, el("span", {}, `${kind} \u00b7 ${notes.join(" \u00b7 ")}`)),
            layer.maps ? maps(layer) : strip(layer)));
        }
      }

      function drawWeights(weights) {
        weightsBox.textContent = "";
        if (!weights) { weightsBox.appendChild(el("p", { class: "muted" }, "The first layer's weights are not images here.")); return; }
        const [h, w] = weights.shape;
        const box = el("div", { class: "weights" });
        const zoom = Math.max(2, Math.round(48 / Math.max(h, w)));
        weights.images.forEach((image, unit) => {
          const canvas = el("canvas", { width: w, height: h, title: `${weights.layer} unit ${unit} (largest |w| ${Studio.format.num(weights.scale[unit], 3)})` });
          canvas.style.width = `${w * zoom}px`;
          canvas.style.height = `${h * zoom}px`;
          P.paint(canvas, image, (v) => P.diverging(v / 127));
          box.appendChild(canvas);
        });
        weightsBox.appendChild(el("p", { class: "muted small" }, `${weights.layer}: ${weights.images.length} units`));
        weightsBox.appendChild(box);
      }

      function drawTop(units) {
        topBox.textContent = "";
        if (!units.length) { topBox.appendChild(el("p", { class: "muted" }, "No hidden layer feeds the output directly.")); return; }
        const table = el("table", { class: "metrics" }, el("tr", {}, ["unit", "activation", "weight", "push", ""].map((t) => el("th", {}, t))));
        for (const u of units) {
          const isOff = off[u.layer] && off[u.layer].has(u.unit);
          table.appendChild(el("tr", {},
            el("td", {}, `${u.layer} #${u.unit}`), el("td", {}, u.activation.toFixed(3)),
            el("td", {}, u.weight.toFixed(3)), el("td", {}, u.contribution.toFixed(3)),
            el("td", {}, el("button", { class: "button light", onclick: () => toggle(u.layer, u.unit) }, isOff ? "on" : "off"))));
        }
        topBox.appendChild(table);
      }

      async function refresh() {
        if (!runId || !alive) return;
        if (busy) { again = true; return; }
        busy = true;
        try {
          if (source === "drawing" && !Studio.drawing) source = "test";
          what.textContent = source === "drawing" ? "your drawing" : `test digit ${index}`;
          const result = await api(`/api/inside?run=${encodeURIComponent(runId)}`, { json: body() });
          if (!alive) return;
          showError(null);
          if (source === "test") {
            api(`/api/testdigit?run=${encodeURIComponent(runId)}&index=${index}`).then((d) => {
              what.textContent = `test digit ${index} of ${d.count}, labelled ${d.label}`;
            }, () => {});
          }
          inputBox.textContent = "";
          inputBox.appendChild(P.grayCanvas(result.input, Math.max(4, Math.floor(168 / result.input.length)), { "data-testid": "model-input" }));
          answerBox.textContent = String(result.answer);
          const changed = result.baseline.answer !== result.answer;
          baseline.textContent = Object.keys(off).length
            ? `with every unit on: ${result.baseline.answer}` + (changed ? " \u2014 switching units off changed the answer" : "")
            : (result.flags_note || "");
          bars.update(result.probabilities);
          drawTop(result.top_units);
          drawLayers(result.layers);
          if (result.weights !== null || !weightsShown) { drawWeights(result.weights); weightsShown = true; }
        } catch (err) {
          showError(err);
        } finally {
          busy = false;
          if (again && alive) { again = false; refresh(); }
        }
      }

      indexInput.addEventListener("change", () => { source = "test"; index = Math.max(0, Number(indexInput.value) || 0); refresh(); });
      useDrawing.disabled = !Studio.drawing;
      if (runId) refresh();
      return () => { alive = false; };
    },
  };
})();
