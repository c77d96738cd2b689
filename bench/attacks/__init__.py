"""Attacks and the battery that runs them against a DefendedModel."""
from .autoattack_adapter import AutoAttack, Square
from .base import Attack, AttackOutcome, evaluate_correct
from .cw import CarliniWagnerL2
from .fmn import FMN
from .gradient import FGSM, PGD
from .transfer import Transfer

__all__ = [
    "Attack",
    "AttackOutcome",
    "AutoAttack",
    "CarliniWagnerL2",
    "FGSM",
    "FMN",
    "PGD",
    "Square",
    "Transfer",
    "evaluate_correct",
]
