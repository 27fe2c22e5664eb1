/* The rule editor (templates/dashboard/rule_editor.html): add, remove and reorder rule rows,
   load the template, and keep the hidden `rules` JSON field in step with the rows, so both
   "Propose" and the htmx test box send exactly what is on the screen. No inline script: the
   CSP forbids it; the template rules arrive as json_script data. */
(function () {
  "use strict";

  function rows(body) { return Array.prototype.slice.call(body.querySelectorAll("tr.rule-row")); }

  function readRow(row) {
    function field(name) { return row.querySelector("[data-rule-field=" + name + "]"); }
    var paths = Array.prototype.slice.call(field("paths").selectedOptions).map(function (o) { return o.value; });
    return {
      name: field("name").value.trim(),
      condition: field("condition").value,
      action: field("action").value,
      paths: paths,
      bucket: field("bucket").value.trim()
    };
  }

  function fillRow(row, rule) {
    row.querySelector("[data-rule-field=name]").value = rule.name || "";
    row.querySelector("[data-rule-field=condition]").value = rule.condition || "";
    row.querySelector("[data-rule-field=action]").value = rule.action || "pin";
    row.querySelector("[data-rule-field=bucket]").value = rule.bucket || "";
    Array.prototype.forEach.call(row.querySelector("[data-rule-field=paths]").options, function (option) {
      option.selected = (rule.paths || []).indexOf(option.value) >= 0;
    });
  }

  function init() {
    var form = document.getElementById("rule-editor");
    if (!form) { return; }
    var body = document.getElementById("rule-rows");
    var hidden = document.getElementById("id_rules");
    var template = document.getElementById("rule-row-template");
    var empty = document.getElementById("no-rules");

    function sync() {
      var list = rows(body);
      list.forEach(function (row, index) {
        row.querySelector(".rule-number").textContent = String(index + 1);
        var action = row.querySelector("[data-rule-field=action]").value;
        row.querySelector("[data-rule-field=bucket]").disabled = action !== "bucket";
        row.querySelector("[data-rule-field=paths]").disabled = action === "bucket";
      });
      hidden.value = JSON.stringify(list.map(readRow));
      empty.hidden = list.length > 0;
    }

    function addRow(rule) {
      var row = template.content.querySelector("tr").cloneNode(true);
      if (rule) { fillRow(row, rule); }
      body.appendChild(row);
      return row;
    }

    body.addEventListener("click", function (event) {
      var button = event.target.closest("button");
      if (!button) { return; }
      var row = button.closest("tr.rule-row");
      if (button.hasAttribute("data-rule-remove")) {
        row.remove();
      } else if (button.hasAttribute("data-rule-move")) {
        var step = Number(button.getAttribute("data-rule-move"));
        var sibling = step < 0 ? row.previousElementSibling : row.nextElementSibling;
        if (sibling) { body.insertBefore(row, step < 0 ? sibling : sibling.nextElementSibling); }
      }
      sync();
    });
    body.addEventListener("input", sync);
    body.addEventListener("change", sync);

    form.querySelector("[data-rule-add]").addEventListener("click", function () {
      addRow(null).querySelector("[data-rule-field=name]").focus();
      sync();
    });
    var loadTemplate = form.querySelector("[data-rule-template]");
    loadTemplate.addEventListener("click", function () {
      var source = document.getElementById("rules-template");
      var rules = source ? JSON.parse(source.textContent) : [];
      if (!rules.length) { return; }
      if (rows(body).length && !window.confirm("Replace the rules on this page with the template?")) { return; }
      rows(body).forEach(function (row) { row.remove(); });
      rules.forEach(addRow);
      sync();
    });
    // Every edit syncs, so the test box's htmx request (hx-include="#id_rules") and the
    // proposal both carry the rows as they are on the screen.
    form.addEventListener("submit", sync);
    sync();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
