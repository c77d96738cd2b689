"""Built-in defenses; importing this package registers them."""
from . import (  # noqa: F401  (registration side effects)
    adversarial,
    bottleneck,
    covariance_smoothing,
    distillation,
    lipschitz_margin,
    macer,
    noise,
    plain,
    squeezing,
)
