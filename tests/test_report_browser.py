"""The page as a reader sees it: headless Chromium renders it offline and sorting reorders rows.

Skipped cleanly where no Chromium is installed (Debian: apt-get install chromium).
"""
from __future__ import annotations

import re

import numpy as np
import pytest

from bench.report import write_report
from bench.report.browser import dom_after_clicks, find_chromium, screenshot
from report_synthetic import standard_set, write_results

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="no chromium on PATH")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    write_report(write_results(root / "results", standard_set()), root / "leaderboards")
    return root / "leaderboards" / "index.html"


def _row_order(dom: str, table_id: str) -> list[int]:
    table = dom[dom.index(f'id="{table_id}"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    return [int(i) for i in re.findall(r'<tr data-i="(\d+)"', body)]


def _sorted_header(dom: str, table_id: str) -> list[tuple[str, str]]:
    table = dom[dom.index(f'id="{table_id}"') :]
    head = table[: table.index("</thead>")]
    return re.findall(r'<th [^>]*data-key="([^"]+)"[^>]*aria-sort="(\w+)"', head)


def test_screenshot_shows_tables_flags_and_plots(page, tmp_path):
    import matplotlib.image

    png = screenshot(page, tmp_path / "page.png", width=1400, height=3000)
    img = matplotlib.image.imread(str(png))[..., :3]
    assert img.shape[:2] == (3000, 1400)
    rgb = (img * 255).round().astype(np.int64).reshape(-1, 3)
    colours = set(np.unique(rgb[:, 0] << 16 | rgb[:, 1] << 8 | rgb[:, 2]).tolist())
    assert 0xFFEBE9 in colours, "flagged row background not rendered"
    assert 0xCF222E in colours, "flag mark / red row edge not rendered"
    assert len(colours) > 500, "plots (anti-aliased PNGs) not rendered"


def test_clicking_headers_sorts_rows(page):
    # rows as written: 0 feature_squeezing .99, 1 trades .98, 2 adversarial_training .97,
    # 3 vib .95, 4 vib .97, 5 plain .99 (clean accuracy); ties keep the written order
    dom = dom_after_clicks(page, "table-mnist5k", "clean_accuracy", clicks=1)
    assert _row_order(dom, "table-mnist5k") == [0, 5, 1, 2, 4, 3]
    assert _sorted_header(dom, "table-mnist5k") == [("clean_accuracy", "descending")]
    assert _row_order(dom, "table-cifar10") == [0]  # other tables untouched
    dom = dom_after_clicks(page, "table-mnist5k", "clean_accuracy", clicks=2)
    assert _row_order(dom, "table-mnist5k") == [3, 2, 4, 1, 0, 5]
    assert _sorted_header(dom, "table-mnist5k") == [("clean_accuracy", "ascending")]
    dom = dom_after_clicks(page, "table-mnist5k", "defense", clicks=1)
    assert _row_order(dom, "table-mnist5k") == [2, 0, 5, 1, 3, 4]
