"""`bench sweep`: a grid of defenses x config values x training seeds, each cell an ordinary run.

One model per defense at one setting cannot separate a method from the noise
of its training: the seeds' claims (the Variational Upper Bound of
Weingarten et al. 2024, arXiv 2402.07639, against the Deep VIB of Alemi et
al., ICLR 2017, arXiv 1612.00410; the Conditional Entropy Bottleneck of
Fischer 2020, Entropy 22(9):999) are compared here over several training
seeds and settings, with paired tests on the same test points.

    grid.py     the command's grid: defenses, KEY=V1,V2 axes, seeds -> cells (no torch)
    cells.py    each cell is `bench run` (bench.pipeline.run) into its own results/<run>/; finished cells are reused
    collect.py  a finished cell's metrics and per-sample outcomes, read from disk (no torch)
    analysis.py mean and spread over seeds; paired tests between methods (McNemar, Wilcoxon), Holm's correction
    plots.py    robust accuracy vs eps, minimal perturbation vs the grid value (deterministic PNG bytes)
    page.py     the experiment page: Markdown, CSV and one self-contained HTML
"""
from __future__ import annotations

from .grid import Cell, GridAxis, GridError, SweepSpec, build_spec

__all__ = ["Cell", "GridAxis", "GridError", "SweepSpec", "build_spec"]
