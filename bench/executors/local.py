"""The local executor: every attack batch and certified point runs in this process, one after another."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import pandas as pd
import torch

from ..attacks.base import AttackOutcome
from ..attacks.execute import run_attack
from ..attacks.plan import PlannedAttack
from ..certification.certify import CertifySettings, certify_points


class LocalExecutor:
    """Today's behaviour: the battery's and the certification's own loops, in this process."""

    name = "local"
    workers = 1

    def run_attack(self, planned: PlannedAttack, model: Any, x: torch.Tensor, y: torch.Tensor, *, seed: int,
                   batch_size: int = 500, indices: Optional[Sequence[int]] = None,
                   state_dir: Optional[Path] = None) -> AttackOutcome:
        return run_attack(planned, model, x, y, seed=seed, batch_size=batch_size, indices=indices, state_dir=state_dir)

    def certify_points(self, model: Any, x: torch.Tensor, y: torch.Tensor, indices: Sequence[int],
                       settings: CertifySettings, *, records_file: Path, fingerprint: str,
                       batch_size: Optional[int] = None) -> pd.DataFrame:
        return certify_points(model, x, y, indices, settings, records_file=records_file, fingerprint=fingerprint,
                              batch_size=batch_size)

    def close(self) -> None:
        """Nothing to release."""
