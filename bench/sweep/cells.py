"""Running the sweep's cells: each one is exactly `bench run` for its defense, config and seed.

A cell writes ``results/<run-id>/`` (the directory `bench run` would use for
the same defense, config and seed), so `bench report` lists it too. A cell
whose directory already holds a summary made with the sweep's settings
(profile, test points, headline eps, schema) is reused without recomputing;
an interrupted cell resumes from its attack and certification records (the
pipeline's own resume). A summary made with other settings is replaced, as
`bench run` would replace it, and the log says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .grid import Cell, SweepSpec

Log = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """What every cell shares (`bench run`'s options)."""

    dataset: str = "mnist5k"
    profile: str = "quick"
    n_test: Optional[int] = None
    eps: Optional[float] = None
    device: str = "auto"
    data_dir: Optional[Path] = None
    home: Optional[Path] = None
    retrain: bool = False
    executor: str = "local"  # where each cell's attacks and certification run (not part of the experiment)
    ray_address: Optional[str] = None

    @property
    def results_dir(self) -> Path:
        from ..results import bench_home

        return (Path(self.home) if self.home is not None else bench_home()) / "results"


@dataclass(frozen=True)
class CellRun:
    """A finished cell: where its results are, and whether they were reused."""

    cell: Cell
    out: Path
    reused: bool


def cell_options(cell: Cell, s: Settings, out: Optional[Path] = None) -> Any:
    """The cell as `bench run`'s options."""
    from ..pipeline import RunOptions

    return RunOptions(defense=cell.defense, dataset=s.dataset, out=out, seed=cell.seed, device=s.device,
                      retrain=s.retrain, eps=s.eps, config=dict(cell.config), data_dir=s.data_dir, n_test=s.n_test,
                      home=s.home, profile=s.profile, executor=s.executor, ray_address=s.ray_address)


def cell_dir(cell: Cell, s: Settings, data: Any) -> Path:
    """The cell's run directory: `bench run`'s default for the same defense, config, seed and evaluation."""
    from ..pipeline import run_id
    from ..registry import config_with_seed, create_defense
    from ..results import config_hash
    from ..runspec import run_evaluation_for

    bound = create_defense(cell.defense, **config_with_seed(cell.defense, dict(cell.config), cell.seed))
    hash_ = config_hash(bound.name, s.dataset, bound.config_dict())
    return s.results_dir / run_id(bound.name, s.dataset, hash_, cell.seed, run_evaluation_for(cell_options(cell, s), data))


class _Expected:
    """The evaluated point count and headline eps a reusable summary must have (the data loaded only if needed)."""

    def __init__(self, s: Settings) -> None:
        from ..data import threat_model

        self.s = s
        self.eps = threat_model(s.dataset).linf if s.eps is None else float(s.eps)
        self._size: Optional[int] = None

    def n_test(self, have: Optional[int]) -> int:
        if self.s.n_test is not None and have == self.s.n_test:
            return have  # no need to load the data to know the test set is at least this large
        if self._size is None:
            from ..data import load_dataset

            self._size = len(load_dataset(self.s.dataset, self.s.data_dir).x_test)
        return self._size if self.s.n_test is None else min(self.s.n_test, self._size)


def mismatch(out: Path, s: Settings, expected: _Expected) -> Optional[str]:
    """Why the run in ``out`` cannot stand for this cell (None: it can be reused as it is)."""
    from ..results import read_json
    from ..schema import SCHEMA_VERSION

    path = out / "summary.json"
    if not path.exists():
        return "no summary yet"
    try:
        summary = read_json(path)
    except (OSError, ValueError) as exc:
        return f"unreadable summary ({exc})"
    version = (summary.get("provenance") or {}).get("schema_version", summary.get("schema_version"))
    checks = [
        ("schema", version, SCHEMA_VERSION),
        ("profile", summary.get("profile"), s.profile),
        ("eps", (summary.get("threat_model") or {}).get("eps"), expected.eps),
        ("n_test", summary.get("n_test"), expected.n_test(summary.get("n_test"))),
    ]
    for what, have, want in checks:
        if have != want:
            return f"its summary has {what}={have!r}, the sweep wants {what}={want!r}"
    if not (out / "per_sample.csv").exists() or not (out / "records").is_dir():
        return "per_sample.csv or records/ missing"
    return None


def run_cell(cell: Cell, out: Path, s: Settings, log: Log) -> None:
    """One ordinary run (the pipeline resumes from the cell's records if it was interrupted)."""
    from ..pipeline import run

    run(cell_options(cell, s, out), log=log)


def run_sweep(spec: SweepSpec, s: Settings, log: Log) -> list[CellRun]:
    """Every cell, in order: reused when finished with these settings, else run (or resumed)."""
    from ..data import load_dataset

    expected = _Expected(s)
    data = load_dataset(s.dataset, s.data_dir)  # the evaluation (and so the run directory) depends on its size
    done: list[CellRun] = []
    for k, cell in enumerate(spec.cells, 1):
        out = cell_dir(cell, s, data)
        reason = mismatch(out, s, expected)
        if reason is None:
            log(f"[{k}/{len(spec.cells)}] {cell.label}: reused {out.name}")
            done.append(CellRun(cell, out, True))
            continue
        replacing = (out / "summary.json").exists()
        log(f"[{k}/{len(spec.cells)}] {cell.label}: {'replacing' if replacing else 'running'} {out.name} ({reason})")
        run_cell(cell, out, s, log)
        done.append(CellRun(cell, out, False))
    return done
