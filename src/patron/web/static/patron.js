// The pages' own behaviour, loaded from here so the Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";
  // Plotly in two builds from the npm registry: the basic one (bar, scatter, pie: 1.1 MB) draws almost every chart
  // and is parsed three times as fast as the full one (4.8 MB), fetched only for a chart the basic one cannot draw.
  var BASIC_TRACES = { bar: true, scatter: true, pie: true };
  var BASIC = "/static/vendor/plotly-basic.min.js";
  var FULL = "/vendor/plotly.min.js";
  var loads = {}; // the promise of each build, fetched once
  function inject(url) {
    return new Promise(function (resolve, reject) {
      var script = document.createElement("script");
      script.src = url;
      script.onload = resolve;
      script.onerror = reject;
      document.head.appendChild(script);
    });
  }
  function loadPlotly(url) {
    if (FULL in loads) return loads[FULL]; // the full build draws everything the basic one does
    if (!(url in loads)) {
      // The full build after any basic one, so that the basic one never replaces it when it arrives last.
      var before = BASIC in loads ? loads[BASIC].catch(function () {}) : Promise.resolve();
      loads[url] = url === FULL ? before.then(function () { return inject(FULL); }) : inject(url);
    }
    return loads[url];
  }
  function buildFor(figures) {
    var basic = figures.every(function (figure) {
      return (figure.data || []).every(function (trace) { return BASIC_TRACES[trace.type || "scatter"] === true; });
    });
    return basic ? BASIC : FULL;
  }
  // Charts arrive as their Plotly JSON in data-figure (web/render.py figure_html): draw each once.
  function drawFigures(root) {
    var waiting = Array.prototype.slice.call(root.querySelectorAll(".plotly-figure[data-figure]:not([data-drawn])"));
    if (waiting.length === 0) return;
    var figures = waiting.map(function (element) { return JSON.parse(element.getAttribute("data-figure")); });
    loadPlotly(buildFor(figures)).then(function () {
      waiting.forEach(function (element, index) {
        if (element.hasAttribute("data-drawn")) return;
        element.setAttribute("data-drawn", "");
        Plotly.newPlot(element, figures[index].data, figures[index].layout, { responsive: true });
      });
    });
  }
  // A select marked data-autosubmit sends its form as soon as it changes.
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
      target.form.submit();
    }
  });
  document.addEventListener("DOMContentLoaded", function () { drawFigures(document); });
  document.addEventListener("htmx:afterSettle", function (event) { drawFigures(event.target); });
})();
