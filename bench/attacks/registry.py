"""The attack registry: one canonical name per attack, with its norm, kind and factory.

Every attack the battery can run is an ``AttackSpec``: the name it has in
summaries, records and leaderboards (and nowhere else a second one), the
threat model it attacks (``linf`` at the headline eps or ``l2`` at the
dataset's L2 budget), how it reaches the model (white-box, black-box,
transfer or ensemble: the masking checks compare kinds), and a factory that
builds the configured attack from the battery profile. Factories are named
as ``"module:function"`` and imported only when a plan is made, so the CLI,
the flags and the reporter read names from here without loading torch.

Third-party attacks register through the entry-point group
``bench.attacks`` (their module calls ``register_attack``), exactly like
defenses.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from ..registry import Registry

WHITE_BOX, BLACK_BOX, TRANSFER, ENSEMBLE = "white-box", "black-box", "transfer", "ensemble"
KINDS = (WHITE_BOX, BLACK_BOX, TRANSFER, ENSEMBLE)

# Canonical names the battery's own checks refer to.
FGSM = "fgsm"
PGD_LINF = "pgd-linf"
PGD_LINF_MARGIN = "pgd-linf-margin"
PGD_LINF_STRONG = "pgd-linf-strong"
PGD_L2 = "pgd-l2"
TRANSFER_ATTACK = "transfer"
SQUARE = "square"
AUTOATTACK = "autoattack"
CW_L2 = "cw-l2"
FMN_L2 = "fmn-l2"
FMN_LINF = "fmn-linf"
APGD_CE = "apgd-ce"
APGD_T = "apgd-t"
PGD_LINF_RELAXED = "pgd-linf-relaxed"


@dataclass(frozen=True)
class AttackSpec:
    """A registered attack. ``factory(profile, context) -> Attack | None`` (None: not applicable)."""

    name: str
    norm: str
    kind: str
    factory: Union[str, Callable[..., Any]]
    description: str
    order: int = 1000  # position in the battery (cheap and standard attacks first)
    title: Optional[str] = None  # how tables show it, when not the name
    # A cascade attack runs only on the points every earlier attack at its budget left robust (as
    # AutoAttack runs its own attacks), so it can cover every such point at the cost of the robust ones.
    cascade: bool = False

    def build(self, profile: Any, context: Any) -> Any:
        """The configured attack for this profile and plan context (imports the factory's module)."""
        factory = self.factory
        if isinstance(factory, str):
            module, _, function = factory.partition(":")
            factory = getattr(importlib.import_module(module), function)
        return factory(profile, context)

    @property
    def display(self) -> str:
        return self.title or self.name


ATTACKS: Registry[AttackSpec] = Registry("attack", group="bench.attacks")


def register_attack(spec: AttackSpec) -> AttackSpec:
    """Add an attack to the battery (built-ins below; plugins from their entry point)."""
    if spec.kind not in KINDS:
        raise ValueError(f"bad kind {spec.kind!r} for attack {spec.name!r}; valid choices: {', '.join(KINDS)}")
    if spec.norm not in ("linf", "l2"):
        raise ValueError(f"bad norm {spec.norm!r} for attack {spec.name!r}; valid choices: linf, l2")
    source = spec.factory if isinstance(spec.factory, str) else f"{spec.factory.__module__}:{spec.factory.__qualname__}"
    ATTACKS.add(spec.name, spec, source)
    return spec


_F = "bench.attacks.factories:"
for _spec in (
    AttackSpec(FGSM, "linf", WHITE_BOX, _F + "fgsm", "FGSM, one signed-gradient step (Goodfellow et al. 2015)", 10),
    AttackSpec(PGD_LINF, "linf", WHITE_BOX, _F + "pgd_linf", "L-inf PGD on cross-entropy (Madry et al. 2018)", 20),
    AttackSpec(PGD_LINF_MARGIN, "linf", WHITE_BOX, _F + "pgd_linf_margin",
               "L-inf PGD on the logit margin (does not saturate)", 30),
    AttackSpec(PGD_L2, "l2", WHITE_BOX, _F + "pgd_l2", "L2 PGD on cross-entropy", 40),
    AttackSpec(TRANSFER_ATTACK, "linf", TRANSFER, _F + "transfer",
               "PGD examples crafted on an independently trained plain model", 50),
    AttackSpec(APGD_CE, "linf", WHITE_BOX, _F + "apgd_ce",
               "APGD on cross-entropy (Croce & Hein 2020, pyautoattack), on every point still robust", 52,
               title="APGD-CE", cascade=True),
    AttackSpec(APGD_T, "linf", WHITE_BOX, _F + "apgd_t",
               "APGD-T, targeted DLR loss (pyautoattack), on every point still robust", 54, title="APGD-T",
               cascade=True),
    AttackSpec(PGD_LINF_RELAXED, "linf", WHITE_BOX, _F + "pgd_linf_relaxed",
               "quantisation-aware PGD (reachable images, relaxation, exact rounding; detector evasion) for "
               "defenses that declare an input transform, on every point still robust", 56, cascade=True),
    AttackSpec(SQUARE, "linf", BLACK_BOX, _F + "square", "Square Attack, score-based black-box (pyautoattack)", 60),
    AttackSpec(AUTOATTACK, "linf", ENSEMBLE, _F + "autoattack",
               "AutoAttack standard (rand for stochastic models), pyautoattack", 70, title="AutoAttack"),
    AttackSpec(CW_L2, "l2", WHITE_BOX, _F + "cw_l2", "Carlini-Wagner L2, minimum norm, binary search over c", 80),
    AttackSpec(FMN_L2, "l2", WHITE_BOX, _F + "fmn_l2", "Fast minimum-norm L2 (foolbox)", 90),
    AttackSpec(FMN_LINF, "linf", WHITE_BOX, _F + "fmn_linf", "Fast minimum-norm L-inf (foolbox)", 100),
    AttackSpec(PGD_LINF_STRONG, "linf", WHITE_BOX, _F + "pgd_linf_strong",
               "L-inf PGD with more steps and restarts: the convergence check", 110),
):
    register_attack(_spec)


def attack_specs() -> list[AttackSpec]:
    """Every registered attack in battery order (plugins included)."""
    return sorted(ATTACKS.loaded(), key=lambda s: (s.order, s.name))


def attack_names() -> list[str]:
    return [s.name for s in attack_specs()]


def get_attack(name: str) -> AttackSpec:
    return ATTACKS.get(name)
