// digitlab studio: the Compare view. Two or more finished runs side by side: curves overlaid,
// test accuracies with 95% intervals, per-class accuracies (differences from the first run),
// and per pair the test digits one gets right and the other wrong, with McNemar's exact test.
(function () {
  "use strict";
  const Studio = window.Studio;
  const { el, api } = Studio;
  const P = Studio.pixels;
  const { pct } = Studio.format;

  function pValue(p) {
    if (p === 0) return "p < 1e-300"; // below the smallest double: the difference is beyond doubt
    return "p = " + (p >= 0.001 ? p.toFixed(3) : p.toExponential(1));
  }

  Studio.views.compare = {
    title: "Compare",
    render(root, params) {
      const chosen = new Set((params.runs || "").split(",").filter(Boolean));
      const error = el("p", { class: "error", "data-testid": "error", hidden: true });
      const showError = (err) => { error.textContent = err ? String(err.message || err) : ""; error.hidden = !err; };
      const pick = el("div", { class: "pick", "data-testid": "compare-pick" });
      const go = el("button", { "data-testid": "compare-go", onclick: () => Studio.go(`#/compare?runs=${[...chosen].map(encodeURIComponent).join(",")}`) }, "Compare");
      const content = el("div", {});
      root.appendChild(el("div", { class: "toolbar" }, el("h1", {}, "Compare runs")));
      root.appendChild(el("div", { class: "draw-grid" }, el("div", {}, el("h3", {}, "Finished runs (pick two or more)"), pick, el("p", {}, go))));
      root.appendChild(error);
      root.appendChild(content);

      api("/api/runs").then((data) => {
        const runs = data.runs.filter((r) => r.kind === "run" && r.status === "finished");
        if (!runs.length) pick.appendChild(el("span", { class: "muted" }, "No finished runs yet."));
        for (const r of runs) {
          const box = el("input", { type: "checkbox", checked: chosen.has(r.id), "data-run-id": r.id,
            onchange: (e) => { if (e.target.checked) chosen.add(r.id); else chosen.delete(r.id); } });
          pick.appendChild(el("label", {}, box, ` ${r.name} `, el("span", { class: "muted small" },
            [r.dataset, r.model, r.test_accuracy != null ? pct(r.test_accuracy) : ""].filter(Boolean).join(" \u00b7 "))));
        }
      }, showError);

      if (chosen.size < 2) {
        content.appendChild(el("p", { class: "muted" }, "Pick two or more runs tested on the same test set."));
        return null;
      }

      api(`/api/compare?runs=${[...chosen].map(encodeURIComponent).join(",")}`).then(draw, showError);

      function draw(result) {
        const runs = result.runs;
        const name = (id) => (runs.find((r) => r.id === id) || { name: id }).name;
        // curves overlaid
        const charts = el("div", { class: "charts" });
        for (const [key, title, percent] of [["val_accuracy", "Validation accuracy", true], ["val_loss", "Validation loss", false], ["train_loss", "Training loss", false]]) {
          const series = runs.filter((r) => r.curves[key]).map((r) => ({ name: r.name, values: r.curves[key] }));
          if (series.length) charts.appendChild(el("div", { class: "card" }, el("h3", {}, title), Studio.charts.line(null, series, { percent, legend: true, testid: `compare-${key}` })));
        }
        content.appendChild(charts);

        // accuracies, intervals, per class (differences from the first run)
        const classes = runs[0].per_class.length;
        const head = el("tr", {}, el("th", {}, "run"), el("th", {}, "test accuracy"), el("th", {}, "95% interval"), el("th", {}, "n"),
          Array.from({ length: classes }, (_, k) => el("th", {}, String(k))));
        const table = el("table", { class: "compare", "data-testid": "compare-table" }, head);
        runs.forEach((r, i) => {
          table.appendChild(el("tr", { "data-run-id": r.id },
            el("td", {}, r.name), el("td", {}, pct(r.accuracy)),
            el("td", {}, `${pct(r.interval[0])} \u2013 ${pct(r.interval[1])}`), el("td", {}, String(r.n)),
            r.per_class.map((a, k) => {
              const base = runs[0].per_class[k];
              if (i === 0 || a === null || base === null) return el("td", {}, a === null ? "" : pct(a, 1));
              const diff = a - base;
              return el("td", { class: diff > 0 ? "better" : diff < 0 ? "worse" : null, title: `${pct(a, 1)} vs ${pct(base, 1)}` },
                `${diff >= 0 ? "+" : ""}${(100 * diff).toFixed(1)}`);
            })));
        });
        content.appendChild(el("div", { class: "card" }, el("h2", {}, "Test accuracy"),
          el("p", { class: "muted small" }, `Per class: the first run's accuracy, then each other run's difference from it in points.`), table));

        // pairs: discordant digits and McNemar's exact test
        for (const pair of result.pairs) {
          const b = pair.a_only.length, c = pair.b_only.length;
          const real = pair.p_value < 0.05;
          const card = el("div", { class: "card", style: { marginTop: "12px" }, "data-testid": "compare-pair" },
            el("h2", {}, `${name(pair.a)} vs ${name(pair.b)}`),
            el("p", {}, `${b} test digits only ${name(pair.a)} gets right, ${c} only ${name(pair.b)} gets right. McNemar's exact test: `,
              el("b", { "data-testid": "mcnemar-p", "data-value": pair.p_value }, pValue(pair.p_value)), ". ",
              el("span", { class: "verdict" }, real
                ? "The difference is real (p < 0.05)."
                : "The difference could be chance (p \u2265 0.05).")));
          for (const [label, indices] of [[`Right only in ${name(pair.a)}`, pair.a_only], [`Right only in ${name(pair.b)}`, pair.b_only]]) {
            const digits = el("div", { class: "digits" });
            for (const k of indices.slice(0, 24)) {
              const image = result.images && result.images[String(k)];
              const [h, w] = result.image_shape || [0, 0];
              const figure = el("figure", {});
              if (image) {
                const rows = Array.from({ length: h }, (_, y) => image.slice(y * w, (y + 1) * w));
                figure.appendChild(P.grayCanvas(rows, 42 / Math.max(h, w)));
              }
              figure.appendChild(el("figcaption", {}, `#${k}` + (result.labels ? ` (${result.labels[String(k)]})` : "")));
              digits.appendChild(figure);
            }
            card.appendChild(el("h3", {}, `${label}: ${indices.length}` + (indices.length > 24 ? " (first 24)" : "")));
            card.appendChild(digits);
          }
          content.appendChild(card);
        }
      }
      return null;
    },
  };
})();
