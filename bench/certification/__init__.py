"""Randomized-smoothing certification (Cohen, Rosenfeld, Kolter 2019) for any DefendedModel.

``smoothing`` holds the smoothed classifier (sampling, PREDICT, CERTIFY),
``bounds`` the statistics, ``records`` the per-sample CSVs, ``pipeline``
profiles and the summary block, ``standalone`` the `bench certify` command.
"""
from .bounds import certified_radius, lower_confidence_bound, max_certifiable_radius
from .pipeline import (
    PROFILES,
    CertifyProfile,
    CertifySettings,
    certify_for_run,
    certify_points,
    certify_sigmas,
    spread_indices,
    summarize,
)
from .records import format_key, merge_records, read_records, records_path
from .smoothing import ABSTAIN, Certificate, SmoothedClassifier

__all__ = [
    "ABSTAIN",
    "Certificate",
    "CertifyProfile",
    "CertifySettings",
    "PROFILES",
    "SmoothedClassifier",
    "certified_radius",
    "certify_for_run",
    "certify_points",
    "certify_sigmas",
    "format_key",
    "lower_confidence_bound",
    "max_certifiable_radius",
    "merge_records",
    "read_records",
    "records_path",
    "spread_indices",
    "summarize",
]
