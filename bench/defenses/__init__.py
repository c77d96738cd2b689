"""Built-in defenses; importing this package registers them."""
from . import adversarial, bottleneck, distillation, noise, plain, squeezing, worst_case_mi  # noqa: F401  (registration side effects)
