// Two gaps Material for MkDocs 9 leaves that axe-core reports as serious:
// the search dialog has no accessible name, and a table wider than the column scrolls in a wrapper
// that the keyboard cannot reach.
document$.subscribe(function () {
  var search = document.querySelector(".md-search[role=dialog]");
  if (search && !search.hasAttribute("aria-label")) search.setAttribute("aria-label", "Search");
  document.querySelectorAll(".md-typeset__scrollwrap").forEach(function (wrap) {
    wrap.setAttribute("tabindex", "0");
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Table (scrolls sideways)");
  });
});
