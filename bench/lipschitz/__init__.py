"""Lipschitz bounds of feed-forward networks: the layers they understand, LipLT, spectral norms.

``structure`` reads a network or refuses it (``NotCertifiable``), ``ops``
holds the layers' linear operators, ``norms`` spectral norms (guaranteed
upper bounds, or power-iteration estimates), ``liplt`` the loop-transformation
recursion (Fazlyab et al., NeurIPS 2023) and ``bounds`` puts them together:
``certified_bounds`` for certificates, ``TrainingBound`` for training.
Used by the `lipschitz_margin` defense (training) and by
``bench.certification.lipschitz`` (deterministic certificates).
"""
from .bounds import PairwiseBounds, TrainingBound, certified_bounds, power_iteration_bounds
from .structure import NotCertifiable

__all__ = ["NotCertifiable", "PairwiseBounds", "TrainingBound", "certified_bounds", "power_iteration_bounds"]
