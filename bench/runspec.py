"""What one run is evaluated on, resolved from its options and the data (no torch).

``bench.runkey`` defines the evaluation's shape and hashes; this module
fills it from ``RunOptions`` / ``CertifyOptions``: the headline eps, the
number of evaluated points, the battery (whole, or the attacks chosen with
``--attacks``), the certification settings (``--sigma``, ``--no-certify``),
and the record of the resolved options written to summary.json.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Sequence

from .errors import BadOptionError
from .runkey import EXTRAS, SWEEP, certify_evaluation, certify_settings, run_evaluation


def battery_choices() -> list[str]:
    """What ``--attacks`` accepts: every registered attack, ``sweep`` (the pgd-linf eps sweep), ``extras``."""
    from .attacks.registry import attack_names

    return attack_names() + [SWEEP, EXTRAS]


def check_attack_selection(names: Optional[Sequence[str]]) -> Optional[tuple[str, ...]]:
    """The selection in battery order without duplicates, or BadOptionError naming the bad name and the choices."""
    if names is None:
        return None
    from .attacks.registry import PGD_LINF

    choices = battery_choices()
    wanted = [n.strip() for n in names if n.strip()]
    if not wanted:
        raise BadOptionError(f"bad --attacks {','.join(names)!r}: no attack named; valid choices: {', '.join(choices)}")
    for name in wanted:
        if name not in choices:
            raise BadOptionError(f"unknown attack {name!r} in --attacks; valid choices: {', '.join(choices)}")
    if SWEEP in wanted and PGD_LINF not in wanted:
        raise BadOptionError(f"--attacks {SWEEP!r} needs {PGD_LINF!r} too (the sweep's headline point); "
                             f"valid choices: {', '.join(choices)}")
    return tuple(n for n in choices if n in wanted)


def run_certify_settings(opts: Any, data: Any) -> Optional[dict[str, Any]]:
    """`bench run`'s certification settings, as ``certify_for_run`` will use them (None: --no-certify)."""
    if not opts.certify:
        return None
    from .certification.profiles import PROFILES, get_profile, profile_sigmas

    profile = opts.profile if opts.profile in PROFILES else "quick"  # as certify_for_run falls back
    prof = get_profile(profile)
    sigmas = profile_sigmas(profile, data.threat) if opts.sigmas is None else opts.sigmas
    n_test = evaluated_points(opts.n_test, len(data.x_test))
    return certify_settings(sigmas, prof.n0, prof.n, prof.alpha, min(prof.points, n_test))


def evaluated_points(n_test: Optional[int], total: int) -> int:
    return total if n_test is None else min(int(n_test), total)


def run_evaluation_for(opts: Any, data: Any) -> dict[str, Any]:
    """The evaluation of a `bench run` (``opts`` a RunOptions) on ``data``."""
    return run_evaluation(
        eps=data.threat.linf if opts.eps is None else float(opts.eps),
        n_test=evaluated_points(opts.n_test, len(data.x_test)), profile=opts.profile,
        attacks=check_attack_selection(opts.attacks), certify=run_certify_settings(opts, data),
        batch_size=opts.batch_size,
    )


def certify_evaluation_for(opts: Any, data: Any, prof: Any) -> dict[str, Any]:
    """The evaluation of a `bench certify` (``opts`` a CertifyOptions, ``prof`` its certification profile)."""
    points = evaluated_points(resolved(opts.n_test, prof.points), len(data.x_test))  # = len(spread_indices(...))
    return certify_evaluation(n0=resolved(opts.n0, prof.n0), n=resolved(opts.n, prof.n),
                              alpha=resolved(opts.alpha, prof.alpha), points=points, clamp=opts.clamp,
                              profile=opts.profile)


def resolved(value: Any, default: Any) -> Any:
    return default if value is None else value


def options_record(opts: Any) -> dict[str, Any]:
    """The resolved options as summary.json keeps them (everything but where BENCH_HOME is)."""
    record = {f.name: getattr(opts, f.name) for f in dataclasses.fields(opts) if f.name != "home"}
    return {k: (list(v) if isinstance(v, tuple) else str(v) if hasattr(v, "__fspath__") else v) for k, v in record.items()}


def reduced_battery_flag(selection: Sequence[str], total: int) -> str:
    """The flag a run with a reduced battery carries (its robust accuracy is an upper bound of the full one's)."""
    return (f"reduced battery: only {', '.join(selection)} ran (--attacks; {total} attacks are registered); "
            "robust accuracy is an upper bound of what the whole battery would measure")
