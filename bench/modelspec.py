"""`bench run --model MODULE:FACTORY [--weights FILE]`: a user's module from its import path and a state dict.

Weights load with ``torch.load(weights_only=True)``, so a checkpoint cannot
run code; every failure is one line naming the bad value (``ModelSpecError``).
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from .errors import ModelSpecError

if TYPE_CHECKING:
    from torch import nn


def load_factory(spec: str, weights: Optional[Union[str, Path]] = None) -> "nn.Module":
    """The module ``FACTORY()`` in ``MODULE`` returns (``spec`` = ``"package.module:factory"``), with ``weights``.

    Weights are a state dict saved with ``torch.save`` and loaded with ``weights_only=True`` (no code runs).
    Every failure is a ``ModelSpecError`` with one line naming the bad value.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ModelSpecError(f"bad --model {spec!r}; expected MODULE:FACTORY, e.g. mypackage.models:make_net")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure of user code is a bad spec, said in one line
        raise ModelSpecError(f"bad --model {spec!r}: cannot import {module_name!r} ({type(exc).__name__}: {exc})") from None
    factory = module
    for part in attr.split("."):
        factory = getattr(factory, part, None)
    if not callable(factory):
        raise ModelSpecError(f"bad --model {spec!r}: {module_name!r} has no callable {attr!r}")
    net = factory()
    from torch import nn

    if not isinstance(net, nn.Module):
        raise ModelSpecError(f"bad --model {spec!r}: {attr}() returned {type(net).__name__}, not a torch.nn.Module")
    if weights is not None:
        _load_weights(net, Path(weights))
    return net


def _load_weights(net: "nn.Module", path: Path) -> None:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelSpecError(f"bad --weights {str(path)!r}: no such file") from None
    except Exception as exc:  # unpickling refused or a corrupt file: one line, never a traceback
        raise ModelSpecError(f"bad --weights {str(path)!r}: not a weights-only state dict ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelSpecError(f"bad --weights {str(path)!r}: holds a {type(state).__name__}, not a state dict")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ModelSpecError(f"bad --weights {str(path)!r}: does not fit the model ({' '.join(first[:2])[:300]})") from None
