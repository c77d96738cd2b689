"""bench: a robustness benchmarking harness (registry -> attacks/certification -> leaderboards)."""
from .registry import create_defense, list_defenses, register_defense

__all__ = ["create_defense", "list_defenses", "register_defense"]
__version__ = "0.1.0"
