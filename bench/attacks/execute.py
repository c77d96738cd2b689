"""Running the plan: each attack over its points in batches, resumable, with a progress bar.

Randomness is seeded per batch from the run seed and the batch's first
sample index (not by call order), so a resumed batch, or a shard of indices
run elsewhere, is exactly the batch that would have run.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch

from ..contract import DefendedModel
from ..perf import fast_layout
from ..progress import progress
from ..results import fingerprint
from .base import AttackOutcome
from .aggregate import worst_case
from .plan import HEADLINE, SWEEP, PlannedAttack
from .store import BatchResult, RecordStore, load_batch, save_batch


def subset_positions(total: int, n: Optional[int], seed: int) -> list[int]:
    """A seeded subset of ``n`` positions out of ``total``, sorted; nested for growing ``n``."""
    if n is None or n >= total:
        return list(range(total))
    generator = torch.Generator().manual_seed(int(seed) + 7919)
    return sorted(torch.randperm(total, generator=generator)[:n].tolist())


def batch_bounds(total: int, batch_size: int) -> list[tuple[int, int]]:
    """The batches [lo, hi) of positions that the attack loop forms (and shards of work are made of)."""
    return [(lo, min(total, lo + batch_size)) for lo in range(0, total, batch_size)]


def attack_batch(planned: PlannedAttack, model: DefendedModel, x: torch.Tensor, y: torch.Tensor,
                 seed: int, first_index: int) -> BatchResult:
    """One batch of one attack, seeded by the run seed and the test index of its first sample."""
    device = next(model.parameters()).device
    torch.manual_seed(seed * 1_000_003 + first_index)  # seeded by the batch's first sample index
    planned.attack.warnings = []
    result = planned.attack.perturb(model, fast_layout(x.to(device)), y.to(device), eps=planned.eps)
    norms = None if result.norms is None else result.norms.cpu()
    return BatchResult(result.correct.cpu(), norms, list(planned.attack.warnings))


def run_attack(
    planned: PlannedAttack,
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    seed: int,
    batch_size: int = 500,
    indices: Optional[Sequence[int]] = None,
    state_dir: Optional[Path] = None,
) -> AttackOutcome:
    """Run one attack over all given samples in batches; with ``state_dir``, finished batches are kept there."""
    indices = list(range(len(x))) if indices is None else list(indices)
    attack = planned.attack
    batches: list[BatchResult] = []
    start = time.perf_counter()
    with progress(total=len(x), desc=f"{planned.name}", unit="pt") as bar:
        attack.bind(status=bar.set_postfix_str, state_dir=state_dir)
        try:
            for lo, hi in batch_bounds(len(x), batch_size):
                batch = load_batch(state_dir, lo, hi) if state_dir is not None else None
                if batch is None:
                    batch = attack_batch(planned, model, x[lo:hi], y[lo:hi], seed, indices[lo])
                    if state_dir is not None:
                        save_batch(state_dir, lo, hi, batch)
                batches.append(batch)
                bar.update(hi - lo)
        finally:
            attack.bind()
    return outcome_of(planned, batches, indices, time.perf_counter() - start)


def outcome_of(planned: PlannedAttack, batches: Sequence[BatchResult], indices: list[int],
               seconds: float) -> AttackOutcome:
    """One attack's outcome from its batches, in position order (however and wherever they ran)."""
    attack = planned.attack
    warnings: list[str] = []
    for batch in batches:
        warnings += [w for w in batch.warnings if w not in warnings]
    norms = [b.norms for b in batches if b.norms is not None]
    return AttackOutcome(
        name=attack.name if planned.role == SWEEP else planned.name,
        norm=attack.norm,
        eps=planned.eps,
        correct=torch.cat([b.correct for b in batches]) if batches else torch.zeros(0, dtype=torch.bool),
        seconds=seconds,
        params=attack.params(),
        indices=indices,
        norms=torch.cat(norms) if norms else None,
        warnings=warnings,
    )


def cascade_positions(planned: PlannedAttack, chosen: list[int], clean_correct: torch.Tensor,
                      done: list[tuple[PlannedAttack, AttackOutcome]], indices: Sequence[int]) -> list[int]:
    """Of ``chosen``, the positions still robust: clean-correct and unbroken by every earlier attack at this budget."""
    same_budget = {p.name: o for p, o in done
                   if p.role == HEADLINE and o.norm == planned.attack.norm and abs(o.eps - planned.eps) < 1e-9}
    alive = worst_case(clean_correct, same_budget, indices)
    return [q for q in chosen if bool(alive[q])]


def run_battery(
    model: DefendedModel,
    x: torch.Tensor,
    y: torch.Tensor,
    plan: list[PlannedAttack],
    *,
    records_dir: Path,
    model_id: str,
    indices: list[int],
    seed: int,
    batch_size: int = 500,
    on_outcome: Optional[Callable[[AttackOutcome, bool], None]] = None,
    clean_correct: Optional[torch.Tensor] = None,
    executor: Optional[Any] = None,
) -> dict[str, AttackOutcome]:
    """Run (or reload from ``records_dir``) every planned attack, in order; return outcomes by planned name.

    Cascade attacks (``planned.cascade``) run only on the points still robust after the earlier
    attacks at their budget (``clean_correct`` is required then); the others on their seeded subset.
    ``executor`` (a ``bench.executors`` executor) runs each attack on its points; None runs it here.
    """
    store = RecordStore(records_dir)
    outcomes: dict[str, AttackOutcome] = {}
    done: list[tuple[PlannedAttack, AttackOutcome]] = []
    for planned in plan:
        chosen = subset_positions(len(x), planned.n, seed)
        if planned.cascade:
            if clean_correct is None:
                raise ValueError(f"cascade attack {planned.name} needs the clean-correct mask")
            chosen = cascade_positions(planned, chosen, clean_correct.cpu().bool(), done, indices)
        chosen_indices = [indices[p] for p in chosen]
        fp = fingerprint(model=model_id, attack=repr(planned.attack), eps=planned.eps, indices=chosen_indices, seed=seed)
        outcome = store.load(planned.name, fp)
        reused = outcome is not None
        if outcome is None:
            state_dir = store.batch_dir(planned.name, fp)
            pos = torch.as_tensor(chosen, dtype=torch.long)
            xs, ys = (x, y) if len(chosen) == len(x) else (x[pos], y[pos])
            outcome = (executor.run_attack if executor is not None else run_attack)(
                planned, model, xs, ys, seed=seed, batch_size=batch_size, indices=chosen_indices, state_dir=state_dir)
            store.save(outcome, chosen_indices, fp, name=planned.name)
            store.drop_batches(state_dir)
        outcomes[planned.name] = outcome
        done.append((planned, outcome))
        if on_outcome is not None:
            on_outcome(outcome, reused)
    return outcomes
