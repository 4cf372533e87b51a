// Two gaps Material for MkDocs 9 leaves that axe-core reports as serious:
// the search dialog has no accessible name, and a table wider than the column scrolls in a wrapper
// that the keyboard cannot reach. Each wrapper becomes a named region; the names differ (its number and
// the heading above it), since two landmarks with one name cannot be told apart (axe: landmark-unique).
function nkHeadingBefore(element) {
  for (var e = element.previousElementSibling; e; e = e.previousElementSibling) {
    if (!/^H[1-6]$/.test(e.tagName)) continue;
    var copy = e.cloneNode(true);  // without the permalink's pilcrow
    copy.querySelectorAll(".headerlink").forEach(function (link) { link.remove(); });
    return copy.textContent.replace(/\s+/g, " ").trim();
  }
  return "";
}

document$.subscribe(function () {
  var search = document.querySelector(".md-search[role=dialog]");
  if (search && !search.hasAttribute("aria-label")) search.setAttribute("aria-label", "Search");
  document.querySelectorAll(".md-typeset__scrollwrap").forEach(function (wrap, i) {
    var heading = nkHeadingBefore(wrap);
    wrap.setAttribute("tabindex", "0");
    wrap.setAttribute("role", "region");
    wrap.setAttribute("aria-label", "Table " + (i + 1) + (heading ? ", " + heading : "") + " (scrolls sideways)");
  });
});
