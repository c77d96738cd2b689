"""Neural lower bounds on mutual information I(X; Z), estimated with a trained critic.

Used by the representation-vulnerability measure (bench.representation) and
by the `worst_case_mi` defense. A critic T(x, z) is trained to maximise a
variational lower bound on I(X; Z); its value on held-out pairs is the
estimate. Two bounds are offered:

- ``dv``: the Donsker-Varadhan bound E_P[T] - log E_{P_X x P_Z}[e^T], as in
  MINE (Belghazi et al., ICML 2018, arXiv 1801.04062). Zhu, Zhang & Evans
  (ICML 2020, arXiv 2002.11798) estimate and maximise worst-case MI with it
  (their code's default); it is the default here.
- ``infonce``: van den Oord et al.'s InfoNCE (arXiv 1807.03748), a lower
  bound that cannot exceed log n for n pairs (Poole et al., ICML 2019,
  arXiv 1905.06922) and has lower variance than DV.

The critic is separable, T(x, z) = <f(x), h(z)>, so the n x n scores of all
pairs in a batch cost one matrix product (as Deep InfoMax's, Hjelm et al.,
ICLR 2019, arXiv 1808.06670); off-diagonal pairs are the samples of the
product of marginals. Written here rather than taken from a library because
no installed package provides neural MI estimators.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

import torch
from torch import nn

BOUNDS = ("dv", "infonce")


def check_bound(bound: str) -> str:
    if bound not in BOUNDS:
        raise ValueError(f"unknown MI bound {bound!r}; valid choices: {', '.join(BOUNDS)}")
    return bound


class SeparableCritic(nn.Module):
    """T(x, z) = <f(x), h(z)>; ``scores(x, z)[i, j]`` = T(x_i, z_j)."""

    def __init__(self, x_net: nn.Module, z_net: nn.Module) -> None:
        super().__init__()
        self.x_net, self.z_net = x_net, z_net

    def scores(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.x_net(x) @ self.z_net(z).t()


def _mlp(d_in: int, hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, d_out))


def make_critic(x_shape: tuple[int, ...], z_dim: int, hidden: int = 256, embed: int = 64) -> SeparableCritic:
    """A critic for inputs of shape ``x_shape``: two strided convolutions for images
    (a smaller version of Zhu et al.'s MNIST critic), an MLP for vectors; an MLP for z."""
    if len(x_shape) == 3:
        channels, height, width = x_shape
        flat = 64 * (height // 2 // 2) * (width // 2 // 2)  # two k=4, s=2, p=1 convolutions halve each side
        x_net: nn.Module = nn.Sequential(
            nn.Conv2d(channels, 32, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(flat, hidden), nn.ReLU(),
            nn.Linear(hidden, embed),
        )
    elif len(x_shape) == 1:
        x_net = _mlp(x_shape[0], hidden, embed)
    else:
        raise ValueError(f"critic input shape {x_shape!r} not supported; valid: (C, H, W) images or (d,) vectors")
    return SeparableCritic(x_net, _mlp(z_dim, hidden, embed))


def mi_lower_bound(scores: torch.Tensor, bound: str = "dv") -> torch.Tensor:
    """The bound (in nats) from an n x n score matrix whose diagonal holds the joint pairs."""
    n = scores.shape[-1]
    if scores.dim() != 2 or n < 2 or scores.shape[0] != n:
        raise ValueError(f"an MI bound needs an n x n score matrix with n >= 2, got shape {tuple(scores.shape)}")
    diagonal = scores.diagonal()
    if check_bound(bound) == "dv":
        off = scores.masked_fill(torch.eye(n, dtype=torch.bool, device=scores.device), float("-inf"))
        return diagonal.mean() - (torch.logsumexp(off.flatten(), 0) - math.log(n * (n - 1)))
    return (diagonal - torch.logsumexp(scores, dim=1)).mean() + math.log(n)


@dataclass
class MIEstimator:
    """How I(X; Z) is estimated: the bound, the critic's size and its training budget.

    The fit pairs are split (seeded) into ``1 - val_fraction`` for training
    and ``val_fraction`` for early stopping: up to ``steps`` Adam steps of
    ``batch_size`` pairs, the critic's state kept from the check (every
    ``check_every`` steps) with the best validation bound. The estimate is
    the bound on all pairs of the evaluation split, held out from both.
    Without early stopping a critic memorises a few hundred images: on 250
    MNIST pairs, 300 steps put InfoNCE at its cap log 250 on the fit pairs and
    between 0.13 and 2.84 nats on held-out pairs depending on the seed.
    Representations are standardised per dimension with the clean fit
    split's mean and std (an invertible map: the MI is unchanged), so one
    budget suits models whose features differ in scale.
    """

    bound: str = "dv"
    steps: int = 300
    batch_size: int = 128
    lr: float = 1e-3
    hidden: int = 256
    embed: int = 64
    val_fraction: float = 0.2
    check_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_bound(self.bound)
        for key in ("steps", "batch_size", "hidden", "embed", "check_every"):
            if int(getattr(self, key)) < 1:
                raise ValueError(f"bad MI estimator {key}={getattr(self, key)!r}; valid: an integer >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"bad MI estimator lr={self.lr!r}; valid: a finite number > 0")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"bad MI estimator val_fraction={self.val_fraction!r}; valid: a number in [0, 1)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def new_critic(self, x_shape: tuple[int, ...], z_dim: int, device: torch.device) -> SeparableCritic:
        """A freshly initialised critic, the same for every call with this seed."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return make_critic(x_shape, z_dim, self.hidden, self.embed).to(device)

    def fit(self, critic: SeparableCritic, x: torch.Tensor, z: torch.Tensor, steps: Optional[int] = None,
            offset: int = 0, val: Optional[tuple[torch.Tensor, torch.Tensor]] = None) -> SeparableCritic:
        """Train ``critic`` to maximise the bound on (x, z); batches drawn from a generator seeded by
        ``seed + offset``, so two fits on data of one size see the same batch indices. With ``val``
        pairs, the critic ends in the state that scored best on them (checked every ``check_every``)."""
        optimizer = torch.optim.Adam(critic.parameters(), lr=self.lr)
        generator = torch.Generator().manual_seed(self.seed + offset)
        size = min(self.batch_size, len(x))
        steps = self.steps if steps is None else steps
        best, best_state = -math.inf, None
        for step in range(steps + 1):
            if val is not None and (step % self.check_every == 0 or step == steps):
                score = self.evaluate(critic, *val)
                if score > best:
                    best, best_state = score, {k: v.clone() for k, v in critic.state_dict().items()}
            if step == steps:
                break
            critic.train()
            idx = torch.randperm(len(x), generator=generator)[:size].to(x.device)
            loss = -mi_lower_bound(critic.scores(x[idx], z[idx]), self.bound)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if best_state is not None:
            critic.load_state_dict(best_state)
        critic.eval()
        return critic

    @torch.no_grad()
    def evaluate(self, critic: SeparableCritic, x: torch.Tensor, z: torch.Tensor) -> float:
        """The bound on all pairs of (x, z) (n x n scores: keep n to a few thousand)."""
        return float(mi_lower_bound(critic.scores(x, z), self.bound))

    def estimate(self, x_fit: torch.Tensor, z_fit: torch.Tensor, x_eval: torch.Tensor,
                 z_eval: torch.Tensor) -> float:
        """A fresh critic fitted on the fit pairs (early-stopped on a part of them), evaluated on the
        held-out pairs (nats).

        Clamped at 0: MI is never negative, so max(0, bound) is still a lower
        bound, while a critic that overfitted its fit pairs can score held-out
        pairs far below 0 (DV especially, whose log-mean-exp term is ruled by
        the largest off-diagonal score).
        """
        n_val = int(round(self.val_fraction * len(x_fit)))
        order = torch.randperm(len(x_fit), generator=torch.Generator().manual_seed(self.seed + 2)).to(x_fit.device)
        train, val = (order[n_val:], order[:n_val]) if n_val >= 2 else (order, None)
        critic = self.new_critic(tuple(x_fit.shape[1:]), z_fit.shape[1], x_fit.device)
        critic = self.fit(critic, x_fit[train], z_fit[train], val=None if val is None else (x_fit[val], z_fit[val]))
        return max(0.0, self.evaluate(critic, x_eval, z_eval))
