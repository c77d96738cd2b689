"""Built-in defenses; importing this package registers them."""
from . import adversarial, bottleneck, distillation, noise, plain, squeezing  # noqa: F401  (registration side effects)
