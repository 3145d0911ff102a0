// scimd console: progressive enhancements only; every page works without
// this file.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // Collapsible navigation on narrow screens.
  var toggle = document.querySelector(".menu-toggle");
  var nav = document.getElementById("nav");
  if (toggle && nav) {
    document.body.classList.add("js");
    toggle.addEventListener("click", function () {
      var open = toggle.getAttribute("aria-expanded") === "true";
      toggle.setAttribute("aria-expanded", String(!open));
      nav.classList.toggle("open", !open);
    });
  }
  // Show times in the reader's time zone as a tooltip.
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.title = d.toLocaleString();
    }
  });
  // Enable a decision's button only once its confirmation is ticked.
  document.querySelectorAll("form.approve, form.reject").forEach(function (form) {
    var box = form.querySelector("input[type=checkbox]");
    var button = form.querySelector("button[type=submit]");
    if (!box || !button) {
      return;
    }
    var sync = function () { button.setAttribute("aria-disabled", String(!box.checked)); };
    box.addEventListener("change", sync);
    sync();
  });
});
