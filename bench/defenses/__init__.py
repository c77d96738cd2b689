"""Built-in defenses; importing this package registers them."""
from . import bottleneck, plain  # noqa: F401  (registration side effects)
