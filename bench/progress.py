"""Progress bars for long work: shown on a terminal, silent in logs and CI.

Set BENCH_PROGRESS=1 to force bars on (e.g. under `tee`), 0 to force them off.
"""
from __future__ import annotations

import os
from typing import Any

from tqdm.auto import tqdm


def progress(iterable: Any = None, **kwargs: Any) -> tqdm:
    setting = os.environ.get("BENCH_PROGRESS")
    disable = None if setting is None else setting.strip() in ("0", "false", "no")
    kwargs.setdefault("leave", False)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=disable, **kwargs)
