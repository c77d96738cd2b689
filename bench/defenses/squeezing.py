"""`feature_squeezing` (Xu, Evans, Qi, NDSS 2018): squeezers in front of a plain classifier, plus a detector.

Squeezers: bit-depth reduction (1 bit for grey 28x28 images, 5 bits for
colour images, as in the paper) and a 2x2 median filter. The detector
compares the classifier's softmax on the raw input with its softmax on each
squeezed version; it flags an input whose largest L1 distance exceeds a
threshold set for a 5% false-positive rate on clean training images held out
from the classifier's training.

Deployed prediction: the classifier on the *bit-depth-reduced* input (the
``deploy`` config field; choices ``bit_depth``, ``median``, ``both``,
``raw``). Bit depth is the default because Xu et al. report that it costs
MNIST almost no clean accuracy while it undoes any L-inf perturbation that
does not carry a pixel across the quantisation threshold; it is also the
harder case for an attacker, since the quantiser has zero gradient almost
everywhere. The median filter serves the detector only (with ``deploy`` set
to ``both`` the prediction uses bit depth, then the median). ``raw`` is Xu et
al.'s own pipeline: the prediction on the unsqueezed input, guarded by the
detector alone. On MNIST a 1-bit squeeze is by itself a strong L-inf
defense (binarisation; most pixels sit far from the 0.5 threshold), so the
default deployment is far more robust than ``raw``.

What an attacker is told: ``differentiable_forward`` replaces the quantiser
by a straight-through estimator (forward exact, backward identity: BPDA,
Athalye et al. 2018); the median filter is left as is, since a median is
differentiable almost everywhere (the gradient flows to the selected
pixel). ``detect_margin`` is the detector score minus the threshold through
the same straight-through surface, so attacks can push misclassification
and the detector jointly (He et al. 2017 bypass the detector this way).
``input_transform()`` splits the deployed forward into the squeezer and
``net`` (``bench.contract.InputTransform``): a sigmoid relaxation of the
quantiser, the preimage of a 1-bit image (a box of pixel intervals) and
the detector margin with the squeezed image held fixed, which
``bench.attacks.quantized`` uses to search the reachable binary images and
then evade the detector without changing the prediction.
No extra attacks are declared: the joint classifier-and-detector attack is
the battery's, built on ``detect_margin``; until it runs, a robust accuracy
that rests on the detector flagging non-adaptive examples is an upper bound.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig, param
from ..contract import DefendedModel, InputTransform
from ..data import Dataset
from ..nets import make_classifier
from .plain import cross_entropy
from ..registry import DefenseConfigError, register_defense
from ..training import seed_everything, train_from_config

DEPLOY_CHOICES = ("bit_depth", "median", "both", "raw")


def _quantise(x: torch.Tensor, levels: float) -> torch.Tensor:
    return torch.round(x.clamp(0.0, 1.0) * levels) / levels


class _QuantiseStraightThrough(torch.autograd.Function):
    """Quantiser forward, identity backward: the BPDA surface of bit-depth reduction.

    The clamp is inside the function so that pixels at exactly 0 or 1 (most
    of an MNIST image) still pass the gradient on.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, levels: float) -> torch.Tensor:  # type: ignore[override]
        return _quantise(x, levels)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad, None


def reduce_bit_depth(x: torch.Tensor, bits: int, straight_through: bool = False) -> torch.Tensor:
    """Quantise [0, 1] inputs to 2**bits levels: round(x * (2**bits - 1)) / (2**bits - 1)."""
    levels = float(2**bits - 1)
    return _QuantiseStraightThrough.apply(x, levels) if straight_through else _quantise(x, levels)


def soft_bit_depth(x: torch.Tensor, bits: int, temperature: float) -> torch.Tensor:
    """A smooth bit-depth reduction: one sigmoid of width ``temperature`` per rounding threshold.

    Tends to ``reduce_bit_depth`` as ``temperature`` -> 0 (away from the
    thresholds (k + 1/2) / levels); the relaxation quantisation-aware
    attacks follow instead of a straight-through gradient.
    """
    levels = 2**bits - 1
    thresholds = (torch.arange(levels, dtype=x.dtype, device=x.device) + 0.5) / levels
    steps = torch.sigmoid((x.unsqueeze(-1) - thresholds) / temperature)
    return steps.sum(-1) / levels


# keeps the preimage bounds clear of the rounding ties (round half to even) whatever float error x * levels has
_TIE_MARGIN = 1e-6


def bit_depth_preimage(t: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel bounds [lo, hi] within [0, 1] of the inputs that ``reduce_bit_depth`` maps to ``t``."""
    levels = float(2**bits - 1)
    k = torch.round(t * levels)
    lo = ((k - 0.5) / levels + _TIE_MARGIN).clamp(0.0, 1.0)
    hi = ((k + 0.5) / levels - _TIE_MARGIN).clamp(0.0, 1.0)
    return torch.where(k <= 0, torch.zeros_like(lo), lo), torch.where(k >= levels, torch.ones_like(hi), hi)


def _symmetric_pad(x: torch.Tensor, before: int, after: int, dim: int) -> torch.Tensor:
    """Pad by mirroring with the edge repeated (scipy's 'reflect'; torch's 'reflect' skips the edge)."""
    parts = []
    if before:
        parts.append(x.narrow(dim, 0, before).flip(dim))
    parts.append(x)
    if after:
        parts.append(x.narrow(dim, x.shape[dim] - after, after).flip(dim))
    return torch.cat(parts, dim=dim)


def median_filter(x: torch.Tensor, size: int = 2) -> torch.Tensor:
    """Per-channel median over a size x size window; shape kept.

    Matches ``scipy.ndimage.median_filter(x, size=(1, 1, size, size),
    mode='reflect')``, the paper's squeezer: the window spans offsets
    -(size // 2) .. size - 1 - size // 2, edges are mirrored with the edge
    pixel repeated, and for an even window the upper of the two middle values
    is taken. Written here because neither torch nor torchvision ships a
    median filter (kornia does, but is not a dependency) and scipy's has no
    gradient.
    """
    if size < 2:
        return x
    before, after = size // 2, size - 1 - size // 2
    padded = _symmetric_pad(_symmetric_pad(x, before, after, 2), before, after, 3)
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # (N, C, H, W, size, size)
    flat = windows.reshape(*windows.shape[:4], size * size)
    return flat.sort(dim=-1).values[..., (size * size) // 2]


class FeatureSqueezingModel(DefendedModel):
    """A plain classifier with squeezers in front and the squeeze-disagreement detector."""

    def __init__(self, net: nn.Module, num_classes: int, bits: int, median_size: int, deploy: str) -> None:
        super().__init__(num_classes)
        if deploy not in DEPLOY_CHOICES:
            raise DefenseConfigError(f"unknown deploy {deploy!r}; valid choices: {', '.join(DEPLOY_CHOICES)}")
        if not 1 <= bits <= 8:
            raise DefenseConfigError(f"bad bits {bits}; valid choices: an integer from 1 to 8")
        self.net = net
        self.bits = int(bits)
        self.median_size = int(median_size)
        self.deploy = deploy
        # Set by fit from held-out clean data; saved with the weights so the zoo reloads it.
        self.register_buffer("threshold", torch.tensor(float("inf")))

    def _squeeze(self, x: torch.Tensor, which: str, straight_through: bool) -> torch.Tensor:
        if which in ("bit_depth", "both"):
            x = reduce_bit_depth(x, self.bits, straight_through)
        if which in ("median", "both"):
            x = median_filter(x, self.median_size)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self._squeeze(x, self.deploy, straight_through=False))

    def differentiable_forward(self, x: torch.Tensor) -> torch.Tensor:
        """The deployed logits exactly, with the quantiser's gradient replaced by the identity."""
        return self.net(self._squeeze(x, self.deploy, straight_through=True))

    def deterministic_network(self) -> tuple[Optional[nn.Module], str]:
        """None: the deployed pipeline is not one Lipschitz network."""
        if self.deploy == "raw":
            return None, ("deployed with the squeeze-disagreement detector, whose rejections a Lipschitz bound on "
                          "the classifier does not describe")
        if self.deploy == "median":
            return None, "the deployed forward median-filters the input, a layer the Lipschitz bound does not cover"
        return None, ("the deployed forward quantises the input (bit-depth reduction), which is not Lipschitz: "
                      "an arbitrarily small change can move a pixel across a rounding threshold")

    def detector_score(self, x: torch.Tensor, bit_depth_image: Optional[torch.Tensor] = None) -> torch.Tensor:
        """max over squeezers of ||softmax(f(x)) - softmax(f(squeeze(x)))||_1, straight-through.

        ``bit_depth_image``, when given, stands for the bit-depth squeezed x
        (held constant: no gradient flows through the quantiser).
        """
        p = F.softmax(self.net(x), dim=1)
        if bit_depth_image is None:
            bit_depth_image = self._squeeze(x, "bit_depth", straight_through=True)
        squeezed = (bit_depth_image, self._squeeze(x, "median", straight_through=True))
        scores = [(p - F.softmax(self.net(s), dim=1)).abs().sum(1) for s in squeezed]
        return torch.stack(scores, dim=0).max(0).values

    def detect_margin(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Detector score minus threshold: > 0 exactly where ``detect`` flags; differentiable."""
        return self.detector_score(x) - self.threshold

    def detect(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """True where the squeezed predictions disagree with the raw one beyond the threshold."""
        with torch.no_grad():
            return self.detect_margin(x) > 0

    def input_transform(self) -> Optional[InputTransform]:
        """The squeezers in front of ``net``, exact and relaxed (see ``bench.contract.InputTransform``).

        With ``deploy`` bit_depth (an element-wise quantiser) the preimage of a
        squeezed image is a box of pixel intervals, and the detector's
        bit-depth squeezer is the deployed one, so its score can be taken with
        the squeezed image held fixed. The median filter is differentiable
        almost everywhere and needs no relaxation.
        """
        if self.deploy == "raw":
            return None
        bits, deploy = self.bits, self.deploy

        def transform(x: torch.Tensor) -> torch.Tensor:
            return self._squeeze(x, deploy, straight_through=False)

        relaxed = None
        if deploy in ("bit_depth", "both"):
            def relaxed(x: torch.Tensor, temperature: float) -> torch.Tensor:
                soft = soft_bit_depth(x, bits, temperature)
                return median_filter(soft, self.median_size) if deploy == "both" else soft

        if deploy != "bit_depth":
            return InputTransform(transform=transform, network=self.net, relaxed=relaxed)
        return InputTransform(
            transform=transform, network=self.net, relaxed=relaxed,
            preimage=lambda t: bit_depth_preimage(t, bits),
            detect_margin_at=lambda x, t: self.detector_score(x, bit_depth_image=t) - self.threshold,
        )


@dataclass
class FeatureSqueezingConfig(TrainConfig):
    bits: Optional[int] = param(None, min=1, max=8)  # None: 1 for grey images, 5 for colour (Xu et al.)
    median_size: int = param(2, min=1)
    # which squeeze the deployed prediction uses: bit_depth, median, both, raw (none)
    deploy: str = param("bit_depth", choices=DEPLOY_CHOICES)
    false_positive_rate: float = param(0.05, gt=0, lt=1)  # on held-out clean training images
    holdout: int = param(500, min=1)  # clean training images kept out of training to set the threshold


def _bits(data: Dataset, config: FeatureSqueezingConfig) -> int:
    if config.bits is not None:
        return int(config.bits)
    return 1 if data.input_shape[0] == 1 else 5


def build_feature_squeezing(data: Dataset, config: FeatureSqueezingConfig) -> FeatureSqueezingModel:
    net = make_classifier(data.input_shape, data.num_classes)
    return FeatureSqueezingModel(net, data.num_classes, _bits(data, config), config.median_size, config.deploy)


@torch.no_grad()
def calibrate_threshold(model: FeatureSqueezingModel, x: torch.Tensor, false_positive_rate: float,
                        batch_size: int = 1000) -> float:
    """The score quantile that flags ``false_positive_rate`` of the clean inputs ``x``.

    Uses the 'higher' quantile and flags strictly above it, so at most that
    fraction of these inputs is flagged.
    """
    model.eval()
    scores = torch.cat([model.detector_score(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])
    return float(torch.quantile(scores.double(), 1.0 - false_positive_rate, interpolation="higher"))


@register_defense("feature_squeezing", config=FeatureSqueezingConfig, build=build_feature_squeezing)
def fit_feature_squeezing(data: Dataset, config: FeatureSqueezingConfig) -> DefendedModel:
    """Feature squeezing (Xu et al. 2018): bit-depth + 2x2 median squeezers and a disagreement detector."""
    if not 0.0 < config.false_positive_rate < 1.0:
        raise DefenseConfigError(f"bad false_positive_rate {config.false_positive_rate}; valid choices: a number in (0, 1)")
    n = len(data.x_train)
    holdout = min(max(int(config.holdout), 1), n - 1)
    generator = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(n, generator=generator).to(data.x_train.device)
    fit_idx, held_idx = order[holdout:], order[:holdout]
    seed_everything(config.seed)  # the weight init draws from the global generator
    model = build_feature_squeezing(data, config).to(data.x_train.device)
    train_from_config(model.net, data.x_train[fit_idx], data.y_train[fit_idx], cross_entropy, config,
                      desc="feature_squeezing")
    model.threshold.fill_(calibrate_threshold(model, data.x_train[held_idx], config.false_positive_rate))
    return model.eval()
