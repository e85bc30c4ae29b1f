// The pages' own behaviour, loaded from here so the Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";
  var plotly = null; // the promise of Plotly (4.8 MB): fetched only once a page or a fragment holds a chart
  function loadPlotly() {
    if (plotly === null) {
      plotly = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = "/vendor/plotly.min.js";
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return plotly;
  }
  // Charts arrive as their Plotly JSON in data-figure (web/render.py figure_html): draw each once.
  function drawFigures(root) {
    var waiting = root.querySelectorAll(".plotly-figure[data-figure]:not([data-drawn])");
    if (waiting.length === 0) return;
    loadPlotly().then(function () {
      waiting.forEach(function (element) {
        if (element.hasAttribute("data-drawn")) return;
        var figure = JSON.parse(element.getAttribute("data-figure"));
        element.setAttribute("data-drawn", "");
        Plotly.newPlot(element, figure.data, figure.layout, { responsive: true });
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
