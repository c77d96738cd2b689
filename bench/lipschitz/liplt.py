"""LipLT: Lipschitz bounds through the loop transformation (Fazlyab, Entesari, Roy, Chellappa, NeurIPS 2023).

Paper: "Certified Robustness via Dynamic Margin Maximization and Improved
Lipschitz Regularization", arXiv 2310.00116. Within a segment
y_0 = W_0 u, y_k = W_k phi_k(y_{k-1}) (k = 1..m), each activation whose
slope lies in [lo, hi] is written phi(z) = mid * z + psi(z) with
mid = (lo + hi) / 2 and psi Lipschitz with constant spread = (hi - lo) / 2
(ReLU: 1/2 and 1/2). Unrolling,

    y_k = (prod_{i=1..k} mid_i) W_k...W_0 u + sum_{j=1..k} (prod_{i=j+1..k} mid_i) W_k...W_j psi_j(y_{j-1}),

so with Lip(y_k) <= L_k,

    L_k = (prod_{i<=k} mid_i) ||W_k...W_0|| + sum_j (prod_{j<i<=k} mid_i) spread_j ||W_k...W_j|| L_{j-1}.

For the logit difference c^T y_m (c = e_a - e_b) the last products become
the vectors c^T W_m...W_j, whose norms are computed exactly. Because
||W_k...W_j|| <= prod ||W_i||, this never exceeds the product of spectral
norms (the "naive" bound, also computed here for comparison), and it is
usually much smaller: the norm of a product sees cancellations that the
product of norms cannot. Across activations or pools that end a segment the
bounds multiply (composition). Everything here takes the norms as inputs,
so the same recursion gives differentiable training bounds (power
iteration) and guaranteed certificate bounds (exact or Fourier norms).
"""
from __future__ import annotations

from typing import Callable, Sequence, Union

import torch

from .ops import LinearOp
from .structure import Activation, Contraction, Segment

# norm(j, k): a bound on (or estimate of) ||W_k ... W_j|| within one segment, j <= k.
NormFn = Callable[[int, int], Union[float, torch.Tensor]]


def _prod(values: Sequence[float]) -> float:
    out = 1.0
    for v in values:
        out *= v
    return out


def hidden_lipschitz(seg: Segment, norm: NormFn, upto: int) -> list:
    """[L_0, ..., L_{upto-1}]: bounds on the Lipschitz constants of the pre-activations y_k."""
    mids = [a.mid for a in seg.acts]  # mids[j-1] belongs to the activation between layers j-1 and j
    bounds: list = []
    for k in range(upto):
        total = _prod(mids[:k]) * norm(0, k)
        for j in range(1, k + 1):
            total = total + _prod(mids[j:k]) * seg.acts[j - 1].spread * norm(j, k) * bounds[j - 1]
        bounds.append(total)
    return bounds


def segment_lipschitz(seg: Segment, norm: NormFn) -> Union[float, torch.Tensor]:
    """LipLT bound on the Lipschitz constant of the whole segment (input to last pre-activation)."""
    if not seg.layers:
        return 1.0
    return hidden_lipschitz(seg, norm, len(seg.layers))[-1]


def pairwise_lipschitz(seg: Segment, norm: NormFn, rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """LipLT bounds on Lip(y_a - y_b) for every class pair (a matrix); ``rows[j]`` = ||c^T W_m...W_j||."""
    m = len(seg.layers) - 1
    mids = [a.mid for a in seg.acts]
    hidden = hidden_lipschitz(seg, norm, m)
    total = _prod(mids) * rows[0]
    for j in range(1, m + 1):
        total = total + _prod(mids[j:]) * seg.acts[j - 1].spread * hidden[j - 1] * rows[j]
    return total


def naive_segment(seg: Segment, norm: NormFn) -> Union[float, torch.Tensor]:
    """Product of the layers' spectral norms and the activations' gains."""
    total: Union[float, torch.Tensor] = 1.0
    for k in range(len(seg.layers)):
        total = total * norm(k, k)
    return total * _prod([a.gain for a in seg.acts])


def naive_pairwise(seg: Segment, norm: NormFn, rows: Sequence[torch.Tensor]) -> torch.Tensor:
    """||c^T W_m|| times the product of the other layers' norms and the activations' gains."""
    m = len(seg.layers) - 1
    total = rows[m] * _prod([a.gain for a in seg.acts])
    for k in range(m):
        total = total * norm(k, k)
    return total


def tail_gain(tail: Sequence[Union[Activation, Contraction]]) -> float:
    """Lipschitz constant of the activations and pools between two segments."""
    return _prod([t.gain if isinstance(t, Activation) else t.lipschitz for t in tail])


def class_difference_rows(layers: Sequence[LinearOp], num_classes: int, dtype: torch.dtype,
                          device: torch.device) -> list[torch.Tensor]:
    """rows[j][a, b] = ||(e_a - e_b)^T W_m ... W_j||_2 for j = 0..m, exactly (adjoints of basis vectors)."""
    current = torch.eye(num_classes, dtype=dtype, device=device)
    eye = current.bool()
    out: list[torch.Tensor] = [None] * len(layers)  # type: ignore[list-item]
    for j in range(len(layers) - 1, -1, -1):
        current = layers[j].adjoint(current.reshape(num_classes, *layers[j].out_shape))
        flat = current.reshape(num_classes, -1)
        squared = (flat[:, None, :] - flat[None, :, :]).pow(2).sum(-1)
        # The diagonal (a == b) is 0; keep sqrt away from it so gradients stay finite.
        out[j] = torch.where(eye, torch.zeros_like(squared), torch.where(eye, torch.ones_like(squared), squared).sqrt())
    return out
