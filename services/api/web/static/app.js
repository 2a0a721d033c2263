// The page works without this file. It adds one convenience: "/" focuses the search box.
"use strict";
document.addEventListener("keydown", function (e) {
  var q = document.getElementById("q");
  if (e.key === "/" && q && document.activeElement !== q && !(document.activeElement instanceof HTMLInputElement)) {
    e.preventDefault();
    q.focus();
    q.select();
  }
});
