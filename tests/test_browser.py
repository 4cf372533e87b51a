"""The built site in a real browser (Debian's Chromium driven by Playwright), as a reader gets it.

A site is built once for this module by `python -m nu_keras report` into a temporary folder (set
NU_KERAS_TEST_SITE=/path/to/site to test an already built site instead), served by http.server on
127.0.0.1, and every HTML page of it is opened once; the tests below check what that visit recorded.
Missing Chromium, axe-core, Playwright or LinkChecker skip the suite, or fail it when CI=true;
`make browser-deps` installs them. Screenshots for review land in site-screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest
from browser_helpers import REPO, axe_script, linkchecker_command, need, new_context, serve

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "site-screenshots"
README_SCREENSHOT = REPO / "docs" / "screenshot-home.png"
SEARCH_WORD = "leavitt"  # a word only the Findings page has (a cited author), so it ranks first


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def pages(site) -> list[str]:
    """Every HTML page of the built site, as a path relative to its root."""
    found = sorted(path.relative_to(site).as_posix() for path in site.rglob("*.html"))
    for page in ["index.html", "findings.html", "method.html", "run.html", "digits/digit-0.html"]:
        assert page in found, f"the built site has no {page}"
    return found


@pytest.fixture(scope="module")
def base_url(site):
    with serve(site) as url:
        yield url


@dataclass
class Visit:
    """What opening one page over HTTP recorded."""

    status: int | None = None
    console_errors: list[str] = field(default_factory=list)
    failed_requests: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list, repr=False)
    images: list[dict] = field(default_factory=list, repr=False)
    links: list[str] = field(default_factory=list, repr=False)
    ids: set[str] = field(default_factory=set, repr=False)
    text: str = field(default="", repr=False)
    violations: list[dict] = field(default_factory=list, repr=False)


IMAGES_JS = """() => Array.from(document.images, img => ({
    src: img.getAttribute('src'), width: img.naturalWidth, complete: img.complete,
    alt: img.getAttribute('alt'), content: img.closest('article') !== null}))"""
LINKS_JS = "() => Array.from(document.querySelectorAll('a[href]'), a => a.href)"
IDS_JS = "() => Array.from(document.querySelectorAll('[id]'), e => e.id)"
AXE_JS = """async () => {
    const result = await axe.run(document, {resultTypes: ['violations']});
    return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map(n => n.target.join(' '))}));
}"""


def record(page, visit_of) -> None:
    """Route the page's console errors and requests into the current Visit (`visit_of()`)."""
    page.on("console", lambda m: m.type == "error" and visit_of().console_errors.append(m.text))
    page.on("pageerror", lambda e: visit_of().console_errors.append(f"uncaught: {e}"))
    page.on("request", lambda r: visit_of().requests.append(r.url))
    page.on("requestfailed", lambda r: visit_of().failed_requests.append(f"{r.url}: {r.failure}"))
    page.on(
        "response",
        lambda r: r.status >= 400 and visit_of().failed_requests.append(f"{r.url}: HTTP {r.status}"),
    )


@pytest.fixture(scope="module")
def visits(browser, base_url, pages) -> dict[str, Visit]:
    """Open every page once over HTTP, let it settle, and record what the tests below check.

    axe-core runs in the same visit when it is installed; only the accessibility test requires it.
    """
    axe_js = axe_script()
    context = new_context(browser, base_url)
    page = context.new_page()
    current: list[Visit] = [Visit()]
    record(page, lambda: current[0])
    results = {}
    for name in pages:
        visit = current[0] = results[name] = Visit()
        response = page.goto(base_url + name, wait_until="networkidle")
        visit.status = response.status if response else None
        visit.images = page.evaluate(IMAGES_JS)
        visit.links = page.evaluate(LINKS_JS)
        visit.ids = set(page.evaluate(IDS_JS))
        visit.text = page.inner_text("body")
        if axe_js:
            page.add_script_tag(path=str(axe_js))
            visit.violations = page.evaluate(AXE_JS)
    context.close()
    return results


def assert_every_page(visits: dict[str, Visit], check) -> None:
    """Fail with one line per page for which `check(visit)` reports something."""
    lines = [f"{name}: {found}" for name, visit in visits.items() if (found := check(visit))]
    assert not lines, "\n".join(lines)


# ----------------------------------------------------------------------------------- every page over HTTP


def test_every_page_answers_200(visits):
    assert_every_page(visits, lambda v: v.status != 200 and f"HTTP {v.status}")


def test_no_console_errors_and_no_failed_request(visits):
    assert_every_page(visits, lambda v: v.console_errors + v.failed_requests)


def test_every_image_loads(visits):
    assert any(visit.images for visit in visits.values()), "the site shows no image at all"
    assert_every_page(visits, lambda v: [i["src"] for i in v.images if not (i["complete"] and i["width"])])


def test_every_chart_has_alt_text(visits):
    """axe accepts alt="" (decorative); a chart is never decorative, so its alt must say what it shows."""
    assert_every_page(visits, lambda v: [i["src"] for i in v.images if i["content"] and not (i["alt"] or "").strip()])


def test_no_request_leaves_127_0_0_1(visits):
    def elsewhere(visit):
        return [
            url
            for url in visit.requests
            if urlsplit(url).scheme not in {"data", "blob"} and urlsplit(url).hostname != "127.0.0.1"
        ]

    assert all(visit.requests for visit in visits.values())
    assert_every_page(visits, elsewhere)


def test_internal_links_resolve(visits, base_url):
    """Every same-origin <a href> answers 200, and a #fragment names an element of its page.

    Fragments like #image=12&unit=3 are not element ids but a view of the Explore page; the Explore tests
    check that such links restore their view.
    """
    targets: dict[str, set[str]] = {}
    for name, visit in visits.items():
        for link in visit.links:
            if link.startswith(base_url):
                targets.setdefault(link, set()).add(name)
    assert len(targets) > len(visits) // 2, "suspiciously few internal links"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    broken = []
    for link, sources in sorted(targets.items()):
        url, fragment = urldefrag(link)
        try:
            with opener.open(url, timeout=10) as answer:
                status = answer.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        path = url.removeprefix(base_url)
        target = visits.get(path) or visits.get(path + "index.html")
        if status != 200:
            broken.append(f"{link} (HTTP {status}) from {sorted(sources)}")
        elif fragment and "=" not in fragment and target and fragment not in target.ids:  # a=b: Explore's view state
            broken.append(f"{link} (no element #{fragment}) from {sorted(sources)}")
    assert not broken, "\n".join(broken)


def test_no_serious_or_critical_accessibility_violation(axe_js, visits):
    def serious(visit):
        return [
            f"{v['id']} ({v['impact']}: {v['help']}) at {v['nodes'][:3]}"
            for v in visit.violations
            if v["impact"] in {"serious", "critical"}
        ]

    assert_every_page(visits, serious)


# ------------------------------------------------------------------------------------------ single checks


def test_search_finds_a_word_of_the_findings_page(browser, base_url, visits):
    """Material's search needs real key presses (fill() fires no keyup) and runs only over HTTP."""
    assert SEARCH_WORD in visits["findings.html"].text.lower()
    context = new_context(browser, base_url)
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.goto(base_url + "index.html", wait_until="networkidle")
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially(SEARCH_WORD, delay=40)
    results = page.locator(".md-search-result__item a.md-search-result__link")
    results.first.wait_for(timeout=15000)
    hrefs = [urlsplit(h).path for h in results.evaluate_all("els => els.map(e => e.href)")]
    context.close()
    assert "/findings.html" in hrefs, hrefs
    assert not errors


def test_site_opens_from_disk_with_its_images(browser, site, pages):
    """use_directory_urls: false makes every page and its links work from file:// (search aside)."""
    context = new_context(browser)
    page = context.new_page()
    missing = []
    for name in pages:
        if name == "404.html":  # MkDocs writes it with root-absolute URLs, for a server
            continue
        page.goto((site / name).as_uri(), wait_until="load")
        images = page.evaluate(IMAGES_JS)
        missing += [f"{name}: image {i['src']}" for i in images if not (i["complete"] and i["width"])]
        for link in page.evaluate(LINKS_JS):
            path = urldefrag(link)[0]
            if path.startswith("file://") and not Path(urlsplit(path).path).is_file():
                missing += [f"{name}: link {link}"]
        assert images or name not in {"index.html", "findings.html"}, f"{name} shows no image from disk"
    context.close()
    assert not missing, "\n".join(missing)


def test_screenshots_for_review(browser, base_url, pages):
    """Home, one digit page and Findings; the Home view also illustrates the README."""
    SCREENSHOTS.mkdir(exist_ok=True)
    digit = next(name for name in pages if name.startswith("digits/"))
    context = new_context(browser, base_url)
    page = context.new_page()
    for name, shot in [("index.html", "home"), (digit, Path(digit).stem), ("findings.html", "findings")]:
        page.goto(base_url + name, wait_until="networkidle")
        page.screenshot(path=SCREENSHOTS / f"{shot}.png", animations="disabled")
        page.screenshot(path=SCREENSHOTS / f"{shot}-full.png", full_page=True, animations="disabled")
    context.close()
    home = (SCREENSHOTS / "home.png").read_bytes()
    assert home.startswith(b"\x89PNG") and len(home) > 10_000
    if not README_SCREENSHOT.exists() or README_SCREENSHOT.read_bytes() != home:
        shutil.copyfile(SCREENSHOTS / "home.png", README_SCREENSHOT)


# --------------------------------------------------------------------------------------- beyond the browser


def test_linkchecker_finds_no_broken_link(base_url, tmp_path):
    """LinkChecker crawls the served site (internal URLs only; no --check-extern)."""
    command = linkchecker_command()
    need(command, "LinkChecker is not installed")
    config = tmp_path / "linkcheckerrc"
    config.write_text("[checking]\nmaxrequestspersecond=100\nthreads=4\n")  # the server allows it
    config.chmod(0o644)
    env = dict(os.environ, NO_PROXY="127.0.0.1", no_proxy="127.0.0.1", HOME=str(tmp_path))
    done = subprocess.run(
        [
            command,
            "--config",
            str(config),
            "--no-status",
            "--output",
            "text",
            "--timeout",
            "10",
            base_url + "index.html",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    checked = re.search(r"(\d+) links? in (\d+) URLs? checked", done.stdout)
    report = done.stdout[-4000:] + done.stderr[-2000:]
    assert done.returncode == 0 and " 0 errors found" in done.stdout, report
    assert checked and int(checked.group(2)) > 20, done.stdout[-2000:]


def test_make_serve_binds_loopback_only():
    """`make serve` starts the dev server on 127.0.0.1 only (issue 6, security basics)."""
    make = shutil.which("make")
    if not make:
        pytest.skip("make is not installed")
    done = subprocess.run([make, "-n", "serve"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    serve_lines = [line for line in done.stdout.splitlines() if "mkdocs serve" in line]
    assert serve_lines, done.stdout
    assert all(re.search(r"--dev-addr[ =]127\.0\.0\.1:\d+", line) for line in serve_lines), serve_lines
    assert "0.0.0.0" not in done.stdout
    assert not re.search(r"^\s*dev_addr:", (REPO / "mkdocs.yml").read_text(), re.M)
