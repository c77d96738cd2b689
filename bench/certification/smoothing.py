"""The smoothed classifier g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c): sampling, PREDICT, CERTIFY.

Written here because no maintained package provides it (Cohen et al.'s
code is a research repository, not a library) and the harness needs what it
lacks: any DefendedModel as base classifier, detectors, per-sample seeding
for resume and shards, and a sampling loop as fast as a bare forward loop.
The statistics come from scipy (see ``bounds``).

The base classifier f is any DefendedModel, deployed as is: f(z) is the
argmax of ``model(z)``, and when the model has a detector that flags z, f(z)
is an extra "flagged" pseudo-class. The smoothed classifier then abstains
whenever flagged is its top class, and flagged votes never count for a real
class, so a detector can only lower a certificate, never inflate it. A draw
whose logits are not all finite (NaN or inf) votes for a second pseudo-class
in the same way: a model that outputs NaN abstains instead of being
certified (the argmax of NaN logits is an arbitrary, constant class).

Noise is added without clamping to [0, 1], as in Cohen et al.'s code. (Any
fixed post-processing of x + noise, clamping included, is also a valid base
classifier, so ``clamp=True`` is offered for models that break outside
[0, 1]; it is recorded with the results because it changes them.)

Randomness is seeded per sample: each test point draws its selection,
estimation and prediction noise from its own generators seeded by
(seed, sigma, index, stream), so a point's result does not depend on which
other points ran before it, and shards merge. Noise is drawn in fixed blocks
of ``NOISE_BLOCK`` rows, which makes the draws independent of the batch size.

Speed: the sampling loop is the whole cost of certification (n = 100,000
forwards per point in the full profile), so it reuses one preallocated
channels-last noise buffer (filled in place with ``torch.randn(out=...)``
and shifted by x in one fused ``torch.add``), runs under inference mode,
keeps the class counts on the device (no host sync per batch), packs the
selection and estimation draws into the same forwards and uses the largest
batch that fits unless timing on the model itself finds a smaller one
clearly faster, once per architecture and process.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn

from ..perf import fast_layout
from .bounds import check_alpha, check_sample_count, certified_radius, lower_confidence_bound, two_sided_pvalue

ABSTAIN = -1
NOISE_BLOCK = 100  # rows per randn call; batch sizes are multiples of it
# Tuned batch sizes per architecture (model class and parameter shapes), input shape, device, clamp, detector.
_tuned_batches: dict[tuple, int] = {}


def stream_seed(seed: int, sigma: float, index: int, stream: str) -> int:
    """A 63-bit seed for one sample's random stream, stable across processes and machines."""
    text = f"{int(seed)}|{float(sigma)!r}|{int(index)}|{stream}"
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little") & ((1 << 63) - 1)


@dataclass(frozen=True)
class Certificate:
    """CERTIFY's answer for one input: the prediction (ABSTAIN = -1) and its L2 radius."""

    prediction: int
    radius: float
    p_lower: float  # Clopper-Pearson lower bound on P(f(x + noise) = prediction's candidate)
    count: int  # estimation draws that voted for the selected class
    n: int
    nonfinite: int = 0  # draws (selection and estimation) whose logits were not all finite

    @property
    def abstained(self) -> bool:
        return self.prediction == ABSTAIN


def _model_device(model: nn.Module) -> torch.device:
    for tensor in list(model.parameters()) + list(model.buffers()):
        return tensor.device
    return torch.device("cpu")


class SmoothedClassifier:
    """Cohen et al.'s smoothed classifier around a base model under Gaussian noise ``sigma``.

    ``batch_size`` None (the default) picks the fastest batch for this model
    by timing; results do not depend on it.
    """

    def __init__(
        self, model: nn.Module, sigma: float, *, clamp: bool = False, batch_size: Optional[int] = None
    ) -> None:
        if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"bad sigma {sigma!r}; valid choices: a number > 0")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"bad batch size {batch_size!r}; valid choices: an integer >= 1, or None to tune")
        self.model = fast_layout(model).eval()
        self.sigma = float(sigma)
        self.clamp = bool(clamp)
        self.device = _model_device(model)
        self.detect = getattr(model, "detect", None)
        self.num_classes: Optional[int] = getattr(model, "num_classes", None)
        self._requested_batch = None if batch_size is None else self._round_batch(batch_size)
        self._buffer: Optional[torch.Tensor] = None

    # -- sampling ---------------------------------------------------------------------------

    @staticmethod
    def _round_batch(size: int) -> int:
        return max(NOISE_BLOCK, (int(size) + NOISE_BLOCK - 1) // NOISE_BLOCK * NOISE_BLOCK)

    @property
    def flagged_class(self) -> int:
        """Index of the pseudo-class that detector-flagged draws vote for."""
        return int(self.num_classes)  # type: ignore[arg-type]

    @property
    def nonfinite_class(self) -> int:
        """Index of the pseudo-class that draws with non-finite logits vote for."""
        return int(self.num_classes) + 1  # type: ignore[arg-type]

    def generator(self, seed: int, index: int, stream: str) -> torch.Generator:
        """The generator for one sample's stream ("selection", "estimation", "prediction")."""
        gen = torch.Generator(device=self.device)
        gen.manual_seed(stream_seed(seed, self.sigma, index, stream))
        return gen

    def _point(self, x: torch.Tensor) -> torch.Tensor:
        """One input (no batch dimension) as a batch of one on the model's device."""
        point = x.to(self.device, torch.float32).unsqueeze(0)
        if self.num_classes is None:  # a plain nn.Module: learn the class count from one forward
            with torch.inference_mode():
                self.num_classes = int(self.model(fast_layout(point)).shape[1])
        return point

    def _buffer_for(self, shape: tuple[int, ...], rows: int) -> torch.Tensor:
        buf = self._buffer
        if buf is None or buf.shape[0] < rows or tuple(buf.shape[1:]) != shape:
            buf = fast_layout(torch.empty((rows, *shape), device=self.device, dtype=torch.float32))
            self._buffer = buf
        return buf

    def _classify(self, batch: torch.Tensor) -> torch.Tensor:
        """f on a batch of noisy inputs: argmax class, the flagged or the non-finite pseudo-class."""
        logits = self.model(batch)
        predictions = logits.argmax(1)
        if self.detect is not None:
            flagged = self.detect(batch).to(device=predictions.device, dtype=torch.bool)
            predictions = torch.where(flagged, torch.full_like(predictions, self.flagged_class), predictions)
        finite = torch.isfinite(logits).all(1)
        return torch.where(finite, predictions, torch.full_like(predictions, self.nonfinite_class))

    def _noisy_batch(self, point: torch.Tensor, rows: list[tuple[int, int]], gens: Sequence[torch.Generator],
                     buf: torch.Tensor) -> torch.Tensor:
        """Fill ``buf`` with point + sigma * noise, block by block from each block's stream."""
        total = 0
        for stream, size in rows:
            block = buf[total : total + size]
            torch.randn(block.shape, generator=gens[stream], out=block)
            total += size
        batch = buf[:total]
        torch.add(point, batch, alpha=self.sigma, out=batch)  # x + sigma * noise, in place, one pass
        if self.clamp:
            batch.clamp_(0.0, 1.0)
        return batch

    @torch.inference_mode()
    def sample_counts(self, x: torch.Tensor, draws: Sequence[tuple[int, torch.Generator]]) -> list[torch.Tensor]:
        """Class counts of f(x + noise) for one input x, one vector per (number of draws, generator) stream.

        Streams never share a noise draw (each fills its own rows from its own
        generator) but share forwards, so selection (n0 = 100) does not run
        at a small, slow batch. Counts have ``num_classes + 2`` entries, the
        last two for detector-flagged draws and draws with non-finite logits,
        and are returned on the CPU.
        """
        point = self._point(x)
        shape = tuple(point.shape[1:])
        # Blocks of at most NOISE_BLOCK rows, stream after stream; a chunk (one forward) is whole blocks.
        blocks = [
            (stream, min(NOISE_BLOCK, num - lo)) for stream, (num, _) in enumerate(draws) for lo in range(0, num, NOISE_BLOCK)
        ]
        total = sum(size for _, size in blocks)
        gens = [gen for _, gen in draws]
        counts = torch.zeros((len(draws), self.num_classes + 2), dtype=torch.long, device=self.device)
        if total == 0:
            return list(counts.cpu())
        batch_size = self.batch_size(point)
        chunks = math.ceil(total / batch_size)
        target = self._round_batch(math.ceil(total / chunks))  # balanced chunks, e.g. 1100 -> 600 + 500
        buf = self._buffer_for(shape, target)
        ones = torch.ones(target, dtype=torch.long, device=self.device)
        chunk: list[tuple[int, int]] = []
        filled = 0
        for block in blocks + [(-1, 0)]:
            if block[0] >= 0 and filled + block[1] <= target:
                chunk.append(block)
                filled += block[1]
                continue
            predictions = self._classify(self._noisy_batch(point, chunk, gens, buf))
            row = 0
            for stream, size in _segments(chunk):
                counts[stream].scatter_add_(0, predictions[row : row + size], ones[:size])  # no host sync
                row += size
            chunk, filled = [block], block[1]
        return list(counts.cpu())

    def counts(self, x: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
        """Class counts of ``num`` noisy draws of one input from ``generator``."""
        return self.sample_counts(x, [(num, generator)])[0]

    # -- batch size -------------------------------------------------------------------------

    def batch_size(self, point: torch.Tensor) -> int:
        """The requested batch size, or the fastest one measured for this model and input shape."""
        if self._requested_batch is not None:
            return self._requested_batch
        key = (
            type(self.model).__qualname__,
            tuple((name, tuple(p.shape)) for name, p in self.model.named_parameters()),
            tuple(point.shape[1:]),
            str(self.device),
            self.clamp,
            self.detect is not None,
        )
        if key not in _tuned_batches:
            _tuned_batches[key] = self._tune_batch_size(point)
        return _tuned_batches[key]

    def _tune_batch_size(self, point: torch.Tensor) -> int:
        from .tuning import tune_batch_size

        return tune_batch_size(self, point, NOISE_BLOCK)

    # -- Cohen et al.'s algorithms ----------------------------------------------------------

    def _seed_model(self, seed: int, index: int) -> None:
        """Seed the global generators a stochastic model draws from, per sample."""
        torch.manual_seed(stream_seed(seed, self.sigma, index, "model") % (2**63))

    def certify(self, x: torch.Tensor, *, n0: int, n: int, alpha: float, seed: int = 0, index: int = 0) -> Certificate:
        """CERTIFY: pick the top class from n0 draws, bound its probability from n fresh draws.

        Abstains when the selected class is the detector's flag or the lower
        bound is at most 1/2; otherwise the radius is sigma * Phi^-1(p_lower).
        """
        n0, n, alpha = check_sample_count("n0", n0), check_sample_count("n", n), check_alpha(alpha)  # before sampling
        self._seed_model(seed, index)
        selection, estimation = self.sample_counts(
            x, [(n0, self.generator(seed, index, "selection")), (n, self.generator(seed, index, "estimation"))]
        )
        candidate = int(selection.argmax())
        count = int(estimation[candidate])
        p_lower = lower_confidence_bound(count, n, alpha)
        nonfinite = int(selection[self.nonfinite_class] + estimation[self.nonfinite_class])
        if candidate in (self.flagged_class, self.nonfinite_class) or p_lower <= 0.5:
            return Certificate(ABSTAIN, 0.0, p_lower, count, n, nonfinite)
        return Certificate(candidate, certified_radius(p_lower, self.sigma), p_lower, count, n, nonfinite)

    def predict(self, x: torch.Tensor, *, n: int, alpha: float, seed: int = 0, index: int = 0) -> int:
        """PREDICT: the top class of n draws, or ABSTAIN unless a binomial test separates it from the runner-up.

        The returned class differs from g(x) with probability at most alpha.
        """
        n, alpha = check_sample_count("n", n), check_alpha(alpha)  # before sampling
        self._seed_model(seed, index)
        counts = self.counts(x, n, self.generator(seed, index, "prediction"))
        top2 = torch.topk(counts, 2)
        top, count_top, count_second = int(top2.indices[0]), int(top2.values[0]), int(top2.values[1])
        if top in (self.flagged_class, self.nonfinite_class) or two_sided_pvalue(count_top, count_second) > alpha:
            return ABSTAIN
        return top


def _segments(chunk: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge consecutive blocks of one stream: [(stream, rows), ...] in chunk order."""
    merged: list[tuple[int, int]] = []
    for stream, size in chunk:
        if merged and merged[-1][0] == stream:
            merged[-1] = (stream, merged[-1][1] + size)
        else:
            merged.append((stream, size))
    return merged
