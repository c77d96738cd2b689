"""The page as a reader sees it: headless Chromium at 1280 x 800 renders it offline, the headline tables fit
without horizontal scrolling, and sorting reorders rows.

Skipped cleanly where no Chromium is installed (Debian: apt-get install chromium).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bench.report import write_report
from bench.report.browser import dom_after_clicks, find_chromium, measure_layout, screenshot
from report_synthetic import standard_set, write_results

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no chromium on PATH")
COMMITTED = Path(__file__).resolve().parents[1] / "leaderboards" / "index.html"
WIDTH, HEIGHT = 1280, 800


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    write_report(write_results(root / "results", standard_set()), root / "leaderboards")
    return root / "leaderboards" / "index.html"


def _pages(page: Path) -> list[Path]:
    return [page] + ([COMMITTED] if COMMITTED.is_file() else [])


def test_headline_tables_fit_1280_pixels_without_horizontal_scroll(page):
    for path in _pages(page):
        layout = measure_layout(path, WIDTH, HEIGHT)
        assert layout["client"] == WIDTH and layout["tables"], path
        assert layout["scroll"] <= layout["client"], f"{path}: the page scrolls sideways ({layout['scroll']} px)"
        for table in layout["tables"]:
            assert table["right"] <= layout["client"], (path, table)
            assert table["scroll"] <= table["client"] + 1, (path, table)  # no overflow inside the table either
    first = measure_layout(COMMITTED if COMMITTED.is_file() else page, WIDTH, HEIGHT)["tables"][0]
    assert first["top"] < HEIGHT / 2  # the first headline table starts in the upper half of the first screen


def test_screenshot_at_1280x800_shows_the_headline_first(page, tmp_path):
    import matplotlib.image

    for k, path in enumerate(_pages(page)):
        png = screenshot(path, tmp_path / f"page{k}.png", width=WIDTH, height=HEIGHT)
        img = matplotlib.image.imread(str(png))[..., :3]
        assert img.shape[:2] == (HEIGHT, WIDTH)
        rgb = (img * 255).round().astype(np.int64).reshape(-1, 3)
        colours = set(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]).tolist())
        assert 0xF6F8FA in colours, "table header not in the first screen"
        if path == COMMITTED:  # the committed board has flagged rows, and they show in the first screen
            assert 0xFFEBE9 in colours, "flagged row background not in the first screen"
            assert 0xCF222E in colours, "flag mark / red row edge not in the first screen"


def _row_order(dom: str, table_id: str) -> list[int]:
    table = dom[dom.index(f'id="{table_id}"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [int(i) for i in re.findall(r'<tr data-i="(\d+)"', body)]


def _sorted_header(dom: str, table_id: str) -> list[tuple[str, str]]:
    table = dom[dom.index(f'id="{table_id}"') :]
    head = table[: table.index("</thead>")]
    return re.findall(r'<th [^>]*data-key="([^"]+)"[^>]*aria-sort="(\w+)"', head)


def test_clicking_headers_sorts_rows(page):
    # rows as written: 0 feature_squeezing .99, 1 trades .98, 2 adversarial_training .97,
    # 3 vib .95, 4 vib .97, 5 plain .99 (clean accuracy); ties keep the written order
    dom = dom_after_clicks(page, "table-mnist5k", "clean", clicks=1)
    assert _row_order(dom, "table-mnist5k") == [0, 5, 1, 2, 4, 3]
    assert _sorted_header(dom, "table-mnist5k") == [("clean", "descending")]
    assert _row_order(dom, "table-cifar10") == [0]  # other tables untouched
    dom = dom_after_clicks(page, "table-mnist5k", "clean", clicks=2)
    assert _row_order(dom, "table-mnist5k") == [3, 2, 4, 1, 0, 5]
    assert _sorted_header(dom, "table-mnist5k") == [("clean", "ascending")]
    dom = dom_after_clicks(page, "table-mnist5k", "defense", clicks=1)
    assert _row_order(dom, "table-mnist5k") == [2, 0, 5, 1, 4, 3]  # vib (…a5) before vib (…a6)
