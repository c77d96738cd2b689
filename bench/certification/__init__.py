"""Randomized-smoothing certification (Cohen, Rosenfeld, Kolter 2019) for any DefendedModel.

``smoothing`` holds the smoothed classifier (sampling, PREDICT, CERTIFY),
``bounds`` the statistics, ``records`` the per-sample CSVs, ``profiles`` the
sample sizes, ``certify`` certifying test points and the summary block.
(`bench certify` itself is a stage of ``bench.pipeline``.) Names are
re-exported lazily, so ``bench.certification.profiles`` loads without torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "certified_radius": "bounds", "lower_confidence_bound": "bounds", "max_certifiable_radius": "bounds",
    "PROFILES": "profiles", "CertifyProfile": "profiles", "get_profile": "profiles",
    "CertifySettings": "certify", "certify_for_run": "certify", "certify_points": "certify",
    "certify_sigmas": "certify", "spread_indices": "certify", "summarize": "certify",
    "format_key": "records", "merge_records": "records", "read_records": "records", "records_path": "records",
    "ABSTAIN": "smoothing", "Certificate": "smoothing", "SmoothedClassifier": "smoothing",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
