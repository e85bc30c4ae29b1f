// The pages' own behaviour, loaded from here so the Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";
  // Charts arrive as their Plotly JSON in data-figure (web/render.py figure_html): draw each once.
  function drawFigures(root) {
    if (typeof Plotly === "undefined") return;
    root.querySelectorAll(".plotly-figure[data-figure]:not([data-drawn])").forEach(function (element) {
      var figure = JSON.parse(element.getAttribute("data-figure"));
      element.setAttribute("data-drawn", "");
      Plotly.newPlot(element, figure.data, figure.layout, { responsive: true });
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
