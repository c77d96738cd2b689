"""``bench.evaluate``: one call for a model you already have, with the results `bench run` writes.

A plain ``nn.Module`` (any torchvision-style classifier: images in [0, 1]
in, logits out) is wrapped as a deterministic ``DefendedModel``; a
``DefendedModel`` keeps what it declares (randomness for EOT, a BPDA
surface, a detector, extra attacks). The evaluation runs through
``bench.pipeline``'s stages (attack battery, randomized-smoothing
certification after Cohen, Rosenfeld & Kolter, ICML 2019, arXiv 1902.02918,
then summary.json and per_sample.csv), so the numbers mean exactly what a
registry defense's do. `bench run --model MODULE:FACTORY` is the command-line form.
"""
from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Union

from .data import DEFAULT_DATASET, ThreatModel
from .errors import InputError, ModelSpecError  # noqa: F401  (ModelSpecError: what --model raises)

if TYPE_CHECKING:
    import torch
    from torch import nn

    from .data import Dataset
    from .schema import Summary

ThreatLike = Union[None, ThreatModel, Mapping[str, float]]
TRANSFER_SKIPPED = ("transfer attack skipped: user tensors (x, y) bring no training data for an independently "
                    "trained source model")


def _log(message: str) -> None:
    print(message, file=sys.stderr)


def evaluate(model: "nn.Module", dataset: Union[str, tuple["torch.Tensor", "torch.Tensor"]] = DEFAULT_DATASET, *,
             threat: ThreatLike = None, profile: str = "quick", attacks: Optional[Sequence[str]] = None,
             certify: bool = True, out: Optional[Union[str, Path]] = None, device: str = "auto",
             n_test: Optional[int] = None, seed: int = 0, name: Optional[str] = None,
             data_dir: Optional[Union[str, Path]] = None, log: Any = _log) -> "Summary":
    """Evaluate a trained model with bench's attack battery and certification; write and return its summary.

    Arguments:
        model: an ``nn.Module`` mapping images in [0, 1], shape (N, C, H, W), to logits (N, classes). A plain
            module is treated as deterministic and attacked through its own gradients; subclass
            ``bench.contract.DefendedModel`` to declare randomness, a BPDA surface or a detector.
            It is put in eval mode on ``device``.
        dataset: a named dataset (``"mnist5k"``, ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``) or your own
            test tensors ``(x, y)``: float images in [0, 1] and integer labels. With tensors there is no
            training data, so the transfer attack is skipped (the summary's ``notes`` say so).
        threat: the budgets: ``bench.data.ThreatModel(linf, l2, sigma)`` or a mapping with any of ``linf``,
            ``l2``, ``sigma``. Default: the named dataset's (MNIST 0.3 / 2.0 / 0.25); required with tensors.
        profile: ``"quick"`` (minutes on a CPU, expensive attacks on subsets) or ``"full"`` (paper settings).
        attacks: names from ``bench attacks`` to run (default: the whole battery).
        certify: also certify with randomized smoothing at ``threat.sigma``.
        out: the run directory (default ``$BENCH_HOME/results/<run-id>/``, BENCH_HOME defaulting to the cwd).
        device: ``"auto"``, ``"cpu"`` or ``"cuda"``.
        n_test: evaluate on the first ``n_test`` test points (default: all).
        seed: seeds the attacks and certification.
        name: the model's name in the summary and leaderboards (default: its class name).
        data_dir: where torchvision datasets live (``mnist``, ``fashion-mnist``, ``cifar10``).
        log: receives progress lines (default: stderr).

    Returns:
        The run's ``bench.schema.Summary`` (clean_accuracy, robust_accuracy, attacks, certification,
        flags, ...), also written as ``out/summary.json`` beside ``per_sample.csv`` and ``records/``.

    Example:
        >>> import bench, torchvision
        >>> net = torchvision.models.resnet18(num_classes=10)   # trained by you
        >>> summary = bench.evaluate(net, "cifar10", n_test=500)
        >>> summary.clean_accuracy, summary.robust_accuracy, summary.flags
    """
    return _evaluate(model, dataset, threat=threat, profile=profile, attacks=attacks, certify=certify, out=out,
                     device=device, n_test=n_test, seed=seed, name=name, data_dir=data_dir, log=log, source=None)


def resolve_threat(threat: ThreatLike, default: Optional[ThreatModel]) -> ThreatModel:
    """A ThreatModel from ``threat`` (missing budgets from ``default``); ValueError naming what is wrong."""
    if isinstance(threat, ThreatModel):
        return threat
    if threat is None and default is not None:
        return default
    given = dict(threat or {})
    unknown = sorted(set(given) - {"linf", "l2", "sigma"})
    if unknown:
        raise InputError(f"unknown threat key(s) {', '.join(unknown)}; valid keys: linf, l2, sigma")
    base = dataclasses.asdict(default) if default is not None else {}
    merged = {**base, **{k: float(v) for k, v in given.items()}}
    if "linf" not in merged or "l2" not in merged:
        raise InputError("threat is required with your own tensors (x, y): pass bench.data.ThreatModel(linf, l2, "
                         "sigma) or a mapping such as {'linf': 0.3, 'l2': 2.0, 'sigma': 0.25}")
    if not (0 <= merged["linf"] <= 1 and merged["l2"] > 0 and merged.get("sigma", 0.25) > 0):
        raise InputError(f"bad threat {merged}; valid: 0 <= linf <= 1, l2 > 0, sigma > 0 (inputs in [0, 1])")
    return ThreatModel(**merged)


def _tensor_dataset(x: Any, y: Any, threat: ThreatModel, num_classes: int) -> "Dataset":
    """User test tensors as a Dataset with no training data, named by a hash of the tensors."""
    import torch

    from .data import Dataset

    if not (torch.is_tensor(x) and x.is_floating_point() and x.dim() == 4):
        raise InputError(f"bad x: expected a float tensor of images (N, C, H, W), got {getattr(x, 'shape', type(x))}")
    if not (torch.is_tensor(y) and y.dim() == 1 and not y.is_floating_point() and len(y) == len(x) > 0):
        raise InputError(f"bad y: expected {len(x)} integer labels (N,), got {getattr(y, 'shape', type(y))}")
    if float(x.min()) < 0 or float(x.max()) > 1:
        raise InputError(f"bad x: values in [{float(x.min()):.3g}, {float(x.max()):.3g}]; valid: images scaled to [0, 1]")
    if int(y.min()) < 0 or int(y.max()) >= num_classes:
        raise InputError(f"bad y: labels in [{int(y.min())}, {int(y.max())}]; valid: 0 .. {num_classes - 1} "
                         f"(the model has {num_classes} outputs)")
    x, y = x.detach().float().cpu().contiguous(), y.detach().long().cpu()
    digest = hashlib.sha256(x.numpy().tobytes() + y.numpy().tobytes()).hexdigest()[:12]
    return Dataset(f"tensors-{digest}", x[:0], y[:0], x, y, [str(k) for k in range(num_classes)], threat)


def weights_sha256(module: "nn.Module") -> str:
    """sha256 of a module's state dict (names, dtypes, shapes and bytes): the id its records are fingerprinted by."""
    import torch

    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _outputs(model: "nn.Module", x: "torch.Tensor") -> int:
    import torch

    try:
        with torch.no_grad():
            logits = model(x[:2])
    except Exception as exc:  # the user's forward on our inputs: say which inputs, in one line
        raise InputError(f"the model fails on inputs of shape {tuple(x.shape[1:])} in [0, 1] "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not (torch.is_tensor(logits) and logits.dim() == 2 and logits.is_floating_point()):
        raise InputError(f"the model must return float logits (N, classes); got {getattr(logits, 'shape', type(logits))}")
    return int(logits.shape[1])


def _prepare_model(model: Any, dataset: Any, threat: ThreatLike, device: str,
                   data_dir: Optional[Union[str, Path]] = None) -> tuple[Any, "Dataset", Any]:
    """(the DefendedModel on its device, the Dataset, the device)."""
    from torch import nn

    from .contract import ClassifierModel, DefendedModel
    from .data import load_dataset, threat_model
    from .perf import fast_layout, resolve_device

    if not isinstance(model, nn.Module):
        raise InputError(f"bad model: expected a torch.nn.Module, got {type(model).__name__}")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    if isinstance(dataset, str):
        data = load_dataset(dataset, Path(data_dir) if data_dir is not None else None)
        data = dataclasses.replace(data, threat=resolve_threat(threat, threat_model(dataset)))
        classes = _outputs(model, data.x_test[:2].to(dev))
        if classes != data.num_classes:
            raise InputError(f"the model has {classes} outputs; {dataset} has {data.num_classes} classes")
    elif isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        x, y = dataset
        classes = _outputs(model, x[:2].to(dev).float()) if hasattr(x, "to") else 0
        data = _tensor_dataset(x, y, resolve_threat(threat, None), classes)
    else:
        raise InputError(f"bad dataset {type(dataset).__name__}; valid: a dataset name or a tuple (x, y) of tensors")
    if not isinstance(model, DefendedModel):
        model = ClassifierModel(model, classes).eval()  # deployed as is: deterministic, its own gradients
    return fast_layout(model), data, dev


def _evaluate(model: Any, dataset: Any, *, threat: ThreatLike, profile: str, attacks: Optional[Sequence[str]],
              certify: bool, out: Any, device: str, n_test: Optional[int], seed: int, name: Optional[str],
              data_dir: Any, log: Any, source: Optional[str]) -> "Summary":
    from . import pipeline
    from .attacks.profiles import get_profile
    from .errors import BadOptionError
    from .perf import tune_allocator
    from .results import bench_home, config_hash
    from .runkey import run_key
    from .runspec import check_attack_selection, run_evaluation_for

    get_profile(profile)  # an unknown profile fails before any work
    selection = (attacks,) if isinstance(attacks, str) else (tuple(attacks) if attacks is not None else None)
    try:
        selection = check_attack_selection(selection)
    except BadOptionError as exc:
        raise InputError(str(exc)) from None
    tune_allocator()
    started = time.perf_counter()
    wrapped, data, dev = _prepare_model(model, dataset, threat, device, data_dir)
    label = name or type(model).__name__
    sha = weights_sha256(wrapped)
    hash_ = config_hash(label, data.name, {"weights": sha, "threat": dataclasses.asdict(data.threat)})
    opts = pipeline.RunOptions(defense=label, dataset=data.name, n_test=n_test, profile=profile, attacks=selection,
                               certify=certify, seed=seed)
    evaluation = run_evaluation_for(opts, data)
    home = bench_home()
    run_dir = Path(out) if out is not None else home / "results" / pipeline.run_id(label, data.name, hash_, seed,
                                                                                   evaluation)
    key = run_key(dataset=data.name, defense=label, config_hash=hash_, seed=seed, evaluation=evaluation)
    p = pipeline.Prepared(None, data, dev, home, hash_, run_dir, seed, started, evaluation, key)
    with pipeline.writing(p, log):
        kind = f"{type(model).__module__}.{type(model).__qualname__}"
        summary = _evaluate_into(p, wrapped, opts, sha, isinstance(dataset, str), source or f"bench.evaluate: {kind}",
                                 kind, log)
    log(f"results: {p.out / 'summary.json'}")
    return summary


def _evaluate_into(p: Any, wrapped: Any, opts: Any, sha: str, named: bool, source: str, kind: str,
                   log: Any) -> "Summary":
    """The stages of a run on a user's model, written into ``p.work``."""
    from . import pipeline
    from .extrastages import extra_stages
    from .runspec import options_record
    from .schema import ModelEntry
    from .training import predict

    loaded = pipeline.LoadedModel(wrapped, sha, ModelEntry(sha256=sha, source=source))
    notes, transfer = _transfer_plan(p, named, opts.attacks, log)
    x, y, indices = pipeline.evaluation_points(p, opts.n_test)
    log(f"{opts.defense} ({sha[:12]}) on {p.data.name}: {len(indices)} test points, profile {opts.profile}, "
        f"on {p.device}")
    clean_correct = predict(wrapped, x, opts.batch_size) == y.cpu()
    eps = p.data.threat.linf
    battery = pipeline.attack_stage(p, loaded, opts, eps, clean_correct, log, transfer_source=transfer)
    certification = pipeline.certify_stage(p, loaded, x, y, opts.profile, log) if opts.certify else None
    extras = extra_stages(loaded, x, y, eps=eps, l2=p.data.threat.l2, profile=opts.profile, certify=opts.certify,
                          battery=battery, clean_correct=clean_correct, batch_size=opts.batch_size, log=log)
    config = {"class": kind, "parameters": sum(t.numel() for t in wrapped.parameters())}
    summary = pipeline.run_summary(p, loaded, name=opts.defense, config=config, eps=eps, profile=opts.profile,
                                   clean_correct=clean_correct, battery=battery, certification=certification,
                                   notes=notes, options=options_record(opts), extras=extras)
    pipeline.write_run(p, summary, clean_correct, battery, y, indices, extras)
    return summary


def _transfer_plan(p: Any, named: bool, selection: Optional[tuple[str, ...]], log: Any) -> tuple[list[str], Any]:
    """(notes, the transfer source for attack_stage): the registry's plain model on a named dataset, else none."""
    from .attacks.registry import TRANSFER_ATTACK

    if named:
        return [], "registry"
    if selection is not None and TRANSFER_ATTACK in selection:
        raise InputError("attack 'transfer' needs a named dataset (its source model trains on the training set); "
                         "valid with tensors (x, y): every other attack of `bench attacks`")
    return ([TRANSFER_SKIPPED] if selection is None else []), None


def evaluate_spec(spec: str, weights: Optional[Union[str, Path]] = None, **kwargs: Any) -> "Summary":
    """`bench run --model`: load ``spec`` (and ``weights``) and evaluate it; the summary names both."""
    from .results import sha256_file

    from .modelspec import load_factory

    net = load_factory(spec, weights)
    source = f"--model {spec}" + (f" --weights {Path(weights).name} (sha256 {sha256_file(Path(weights))})"
                                  if weights is not None else "")
    defaults = {"dataset": DEFAULT_DATASET, "threat": None, "profile": "quick", "attacks": None, "certify": True,
                "out": None, "device": "auto", "n_test": None, "seed": 0, "name": None, "data_dir": None, "log": _log}
    return _evaluate(net, source=source, **{**defaults, **kwargs})
