/* Draws every [data-figure] element from the JSON a template emitted with json_script,
   on load and again after each htmx swap (the live goal page). No other page logic here. */
(function () {
  "use strict";

  function draw(root) {
    if (!window.Plotly) { return; }
    (root || document).querySelectorAll("[data-figure]").forEach(function (element) {
      var source = document.getElementById(element.dataset.figure);
      if (!source) { return; }
      var figure = JSON.parse(source.textContent);
      var config = Object.assign({ displayModeBar: false, responsive: true }, figure.config || {});
      window.Plotly.react(element, figure.data, figure.layout, config);
      element.dataset.rendered = String(Number(element.dataset.rendered || 0) + 1);
    });
  }

  window.addEventListener("load", function () { draw(document); });
  document.addEventListener("htmx:afterSettle", function () { draw(document); });
})();
