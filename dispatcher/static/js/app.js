// Page behaviour that the Content-Security-Policy keeps out of the HTML (no inline scripts or
// style attributes): confirmations before a form is sent, bar widths and tree indents.
(function () {
  "use strict";

  function number(value) {
    var n = parseFloat(value);
    return isFinite(n) ? n : 0;
  }

  function layout(root) {
    root.querySelectorAll("[data-pct]").forEach(function (el) {
      el.style.width = Math.max(0, Math.min(100, number(el.dataset.pct))) + "%";
    });
    root.querySelectorAll("[data-depth]").forEach(function (el) {
      el.style.setProperty("--depth", String(number(el.dataset.depth)));
    });
    root.querySelectorAll("[data-indent]").forEach(function (el) {
      el.style.paddingLeft = number(el.dataset.indent) + "rem";
    });
  }

  // On a phone a wide table scrolls inside itself (app.css): keyboard users reach it with Tab.
  function scrollables(root) {
    root.querySelectorAll("table").forEach(function (table) {
      if (table.scrollWidth > table.clientWidth + 1) {
        table.setAttribute("tabindex", "0");
      } else if (table.getAttribute("tabindex") === "0") {
        table.removeAttribute("tabindex");
      }
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      layout(document);
      scrollables(document);
    });
  } else {
    layout(document);
    scrollables(document);
  }
  window.addEventListener("resize", function () { scrollables(document); });
})();
