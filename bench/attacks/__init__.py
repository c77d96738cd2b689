"""Attacks and the battery that runs them against a DefendedModel."""
from .base import Attack, AttackOutcome, evaluate_correct
from .gradient import FGSM, PGD

__all__ = ["Attack", "AttackOutcome", "FGSM", "PGD", "evaluate_correct"]
