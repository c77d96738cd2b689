"""Look at the leaderboard page as a reader would: headless Chromium screenshots and DOM dumps.

Usage: ``python -m bench.report.browser leaderboards/index.html shot.png [--width W --height H]``.
Needs a Chromium binary (Debian: ``apt-get install chromium``); nothing here
touches the network (the page is self-contained and background networking
is switched off).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

BINARIES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> Optional[str]:
    """Path of a Chromium-like browser on PATH, or None."""
    return next((p for p in (shutil.which(b) for b in BINARIES) if p), None)


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    binary = find_chromium()
    if binary is None:
        raise FileNotFoundError("no chromium on PATH; install it (Debian: apt-get install chromium)")
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
    ]
    try:
        return subprocess.run([binary, *flags, *args], capture_output=True, text=True, timeout=timeout, check=True)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(page: Path, png: Path, width: int = 1600, height: int = 2400, timeout: float = 120) -> Path:
    """Render ``page`` (a local HTML file) to ``png`` at the given window size."""
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    _run([f"--screenshot={png}", f"--window-size={width},{height}", Path(page).resolve().as_uri()], timeout)
    return png


def dump_dom(page: Path, timeout: float = 120) -> str:
    """The DOM after the page's scripts ran (``--dump-dom``)."""
    return _run(["--dump-dom", Path(page).resolve().as_uri()], timeout).stdout


def dom_after_clicks(page: Path, table_id: str, column_key: str, clicks: int = 1, timeout: float = 120) -> str:
    """The DOM after clicking one column header ``clicks`` times, as a reader would to sort.

    The page is copied next to itself with a script appended that clicks the
    header on load; the copy is removed afterwards.
    """
    page = Path(page)
    script = (
        "<script>(function(){var th=document.querySelector("
        f"'#{table_id} th[data-key=\"{column_key}\"]');"
        f"for(var i=0;i<{int(clicks)};i++){{th.click();}}}})();</script>"
    )
    text = page.read_text(encoding="utf-8").replace("</body>", script + "</body>")
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        variant = Path(tmp) / page.name
        variant.write_text(text, encoding="utf-8")
        return dump_dom(variant, timeout)


_MEASURE_JS = (
    "<script>window.addEventListener('load',function(){var d=document.documentElement;"
    "var t=Array.prototype.map.call(document.querySelectorAll('table.board'),function(x){"
    "var r=x.getBoundingClientRect();return {id:x.id,left:r.left,right:r.right,top:r.top,bottom:r.bottom,"
    "scroll:x.scrollWidth,client:x.clientWidth};});"
    "var p=document.createElement('pre');p.id='bench-layout';"
    "p.textContent=JSON.stringify({viewport:window.innerWidth,height:window.innerHeight,client:d.clientWidth,"
    "scroll:d.scrollWidth,tables:t});document.body.appendChild(p);});</script>"
)


def measure_layout(page: Path, width: int = 1280, height: int = 800, timeout: float = 120) -> dict:
    """Where the headline tables land in a ``width`` x ``height`` window, and whether the page scrolls sideways.

    Returns ``{"viewport", "client", "scroll", "tables": [{"id", "left", "right", "top", "bottom"}, ...]}``
    measured by the browser after layout (``scroll > client``: a horizontal scroll bar).
    """
    import html
    import json
    import re

    page = Path(page)
    text = page.read_text(encoding="utf-8").replace("</body>", _MEASURE_JS + "</body>")
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        variant = Path(tmp) / page.name
        variant.write_text(text, encoding="utf-8")
        dom = _run([f"--window-size={width},{height}", "--dump-dom", variant.resolve().as_uri()], timeout).stdout
    found = re.search(r'<pre id="bench-layout">(.*?)</pre>', dom, flags=re.S)
    if found is None:
        raise RuntimeError("the page did not report its layout (scripts blocked?)")
    return json.loads(html.unescape(found.group(1)))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    if find_chromium() is None:
        print("bench: error: no chromium on PATH; install it (Debian: apt-get install chromium)", file=sys.stderr)
        return 2
    print(screenshot(args.page, args.png, args.width, args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
