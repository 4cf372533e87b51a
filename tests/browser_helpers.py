"""For tests/test_browser.py: where its tools live, a loopback server, and when to skip or fail."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import sys
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package; Playwright's own download is never used
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE_IN_VENV = Path("node") / "node_modules" / "axe-core" / "axe.min.js"  # `make browser-deps` puts it here
VIEWPORT = {"width": 1280, "height": 800}
INSTALL_HINT = "run `make browser-deps` (as root on Debian) to install it"


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def need(ok: object, what: str) -> None:
    """Carry on if `ok`; otherwise skip with the reason, or fail under CI, where a skip would hide a gap."""
    if ok:
        return
    reason = f"{what}; {INSTALL_HINT}"
    if under_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def axe_script() -> Path | None:
    """axe-core's `axe.min.js`: $AXE_CORE_JS, else the copy `make browser-deps` installs under the venv."""
    candidates = [os.environ.get("AXE_CORE_JS")]
    candidates += [str(Path(sys.prefix) / AXE_IN_VENV), str(REPO / ".venv" / AXE_IN_VENV)]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def linkchecker_command() -> str | None:
    """The `linkchecker` next to this interpreter (pip), else one on PATH (Debian's package)."""
    beside = Path(sys.executable).parent / "linkchecker"
    return str(beside) if beside.is_file() else shutil.which("linkchecker")


class _QuietHandler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        # LinkChecker throttles every host to about 3 requests a second unless the server answers with
        # this header; with it, the config's maxrequestspersecond applies. Browsers ignore the header.
        self.send_header("LinkChecker", "local test server")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve `directory` over HTTP on 127.0.0.1 at a free port, in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def new_context(browser, base_url: str | None = None, **options):
    """A browser context that records every request and lets none leave 127.0.0.1 (or the disk)."""
    context = browser.new_context(**({"viewport": VIEWPORT} | options))
    if base_url:
        local = re.escape(base_url)
        context.route(re.compile(rf"^(?!{local})"), lambda route: route.abort())
    else:
        context.route(re.compile(r"^(?!file://)"), lambda route: route.abort())
    return context
