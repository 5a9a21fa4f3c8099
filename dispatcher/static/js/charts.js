// Draws the metric and burn-up charts from the JSON in #chart-data with the vendored Chart.js.
// Dates travel as day numbers (days since 1970-01-01) on a linear axis: no date adapter.
(function () {
  "use strict";
  if (typeof Chart === "undefined") { return; }
  var data = JSON.parse(document.getElementById("chart-data").textContent);
  var DAY = 86400000;
  function iso(n) { return new Date(Math.round(n) * DAY).toISOString().slice(0, 10); }
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = false;

  var m = data.metric;
  var xs = [m.start, m.today].concat(m.points.map(function (p) { return p.x; }));
  if (m.deadline !== null) { xs.push(m.deadline); }
  var xmin = Math.min.apply(null, xs), xmax = Math.max.apply(null, xs);
  if (xmax - xmin < 7) { xmax = xmin + 7; }  // at least a week wide, whole days only
  var ys = m.points.map(function (p) { return p.y; });
  [m.target, m.baseline].forEach(function (v) { if (v !== null) { ys.push(v); } });
  var ymin = ys.length ? Math.min(0, Math.min.apply(null, ys)) : 0;
  var ymax = ys.length ? Math.max.apply(null, ys) : 1;
  if (ymax === ymin) { ymax = ymin + 1; }

  var sets = [{
    label: m.name, data: m.points, borderColor: "#2f6fed", backgroundColor: "#2f6fed",
    pointRadius: 4, tension: 0, order: 0
  }];
  if (m.target !== null) {
    sets.push({
      label: "target (" + m.target + ")", data: [{x: xmin, y: m.target}, {x: xmax, y: m.target}],
      borderColor: "#1f9d55", borderDash: [6, 4], pointRadius: 0, borderWidth: 2
    });
  }
  if (m.pace) {
    sets.push({
      label: "pace to target", data: m.pace, borderColor: "#98a2b3", borderDash: [2, 3],
      pointRadius: 0, borderWidth: 1.5
    });
  }
  if (m.deadline !== null) {
    sets.push({
      label: "deadline " + iso(m.deadline),
      data: [{x: m.deadline, y: ymin}, {x: m.deadline, y: ymax}],
      borderColor: "#c2410c", pointRadius: 0, borderWidth: 2
    });
  }
  new Chart(document.getElementById("metric-chart"), {
    type: "line",
    data: {datasets: sets},
    options: {
      maintainAspectRatio: false,
      parsing: false,
      scales: {
        x: {type: "linear", min: xmin, max: xmax,
           ticks: {callback: iso, maxTicksLimit: 6, includeBounds: false, precision: 0}},
        y: {suggestedMin: ymin, suggestedMax: ymax}
      },
      plugins: {
        legend: {position: "bottom", labels: {boxWidth: 14}},
        tooltip: {callbacks: {
          title: function (items) { return items.length ? iso(items[0].parsed.x) : ""; },
          afterLabel: function (item) { return item.raw.note || ""; }
        }}
      }
    }
  });

  var b = data.burnup;
  var dots = b.labels.length <= 31 ? 2 : 0;
  new Chart(document.getElementById("burnup-chart"), {
    type: "line",
    data: {
      labels: b.labels,
      datasets: [
        {label: "done", data: b.done, borderColor: "#1f9d55", backgroundColor: "rgba(31,157,85,.15)",
         fill: true, tension: 0, pointRadius: dots},
        {label: "scope", data: b.scope, borderColor: "#667085", borderDash: [5, 4],
         tension: 0, pointRadius: dots}
      ]
    },
    options: {
      maintainAspectRatio: false,
      scales: {x: {ticks: {maxTicksLimit: 6}}, y: {beginAtZero: true, ticks: {precision: 0}}},
      plugins: {legend: {position: "bottom", labels: {boxWidth: 14}}}
    }
  });
  document.body.dataset.chartsReady = "yes";
})();
