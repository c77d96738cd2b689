"""The built-in defenses before their modules are imported: where each lives and its one-line description.

``bench defenses`` and ``bench --help`` list defenses from this table
without importing torch; ``bench.registry`` imports a defense's module (which
registers it) on its first lookup. A test keeps each description equal to
the first line of its ``fit`` function's docstring.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Builtin:
    """A built-in defense before its module is imported: where it lives and its one-line description."""

    target: str  # "module:fit function"; importing the module registers it
    description: str  # equal to the fit function's first docstring line (a test keeps them in step)


# The built-in defenses, listed without importing torch (`bench defenses`, `bench --help`).
BUILTIN_DEFENSES: dict[str, Builtin] = {
    "ceb": Builtin("bench.defenses.bottleneck:fit_ceb",
                   "Conditional Entropy Bottleneck (Fischer 2020): CE + beta*(log e(z|x) - log b(z|y)), "
                   "b(z|y) = N(mu_y, I)."),
    "worst_case_mi": Builtin("bench.defenses.worst_case_mi:fit_worst_case_mi",
                             "Worst-case MI representation (Zhu, Zhang, Evans 2020) learned without labels, MLP "
                             "classifier on top."),
    "covariance_smoothing": Builtin("bench.defenses.covariance_smoothing:fit_covariance_smoothing",
                                    "Zhen et al. 2021: noisy CE plus a radius hinge from propagated means and "
                                    "covariances, no sampling."),
    "lipschitz_margin": Builtin("bench.defenses.lipschitz_margin:fit_lipschitz_margin",
                                "CRM (Fazlyab et al. 2023): cross-entropy plus certified-radius maximisation with "
                                "LipLT bounds."),
    "macer": Builtin("bench.defenses.macer:fit_macer",
                     "MACER (Zhai et al. 2020): soft smoothed CE plus a hinge on the radius, from k noisy samples."),
    "adversarial_training": Builtin("bench.defenses.adversarial:fit_adversarial_training",
                                    "PGD adversarial training (Madry et al. 2018) at the dataset's headline L-inf eps."),
    "distillation": Builtin("bench.defenses.distillation:fit_distillation",
                            "Defensive distillation (Papernot et al. 2016): teacher and student at T, student "
                            "deployed at T = 1."),
    "feature_squeezing": Builtin("bench.defenses.squeezing:fit_feature_squeezing",
                                 "Feature squeezing (Xu et al. 2018): bit-depth + 2x2 median squeezers and a "
                                 "disagreement detector."),
    "gaussian_augmentation": Builtin("bench.defenses.noise:fit_gaussian_augmentation",
                                     "Trained under Gaussian noise (Cohen et al. 2019): the base classifier for "
                                     "randomized smoothing."),
    "plain": Builtin("bench.defenses.plain:fit_plain",
                     "Undefended CNN trained with cross-entropy; the baseline every defense must beat."),
    "tight_vib": Builtin("bench.defenses.bottleneck:fit_tight_vib",
                         "Variational Upper Bound (Weingarten et al. 2024): CE + beta*KL - lam*min(H(p_hat), H_max)."),
    "trades": Builtin("bench.defenses.adversarial:fit_trades",
                      "TRADES (Zhang et al. 2019): CE(clean) + beta * KL(f(x) || f(x_adv)) at the headline L-inf eps."),
    "vib": Builtin("bench.defenses.bottleneck:fit_vib",
                   "Deep Variational Information Bottleneck (Alemi et al. 2017): CE + beta*KL."),
}
