"""Results on disk: where they live, atomic writes, fingerprints, provenance.

Every file is written to a temporary sibling and renamed into place, so an
interrupted run never leaves a half-written file; a rerun resumes from the
records already there. Fingerprints (of everything that determines a
record) live here rather than with the attacks, so certification and the
reporter never load the attack libraries. No torch here.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Optional

from .errors import DamagedFileError, OutputPathError, StorageError, environment_error

_UMASK = os.umask(0)
os.umask(_UMASK)
_PACKAGES = ("bench", "torch", "torchvision", "numpy", "pandas", "mlxtend", "foolbox", "pyautoattack", "scipy")


def bench_home() -> Path:
    """Root under which models/, results/ and leaderboards/ live ($BENCH_HOME, else the working directory)."""
    return Path(os.environ.get("BENCH_HOME") or Path.cwd())


def fingerprint(**parts: Any) -> str:
    """16 hex digits identifying a record's inputs (model weights, attack or certificate settings, samples, seed)."""
    canonical = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file and ``os.replace``.

    A write the environment refuses (disk full, permissions) raises
    ``StorageError`` naming ``path``; the old file, if any, is untouched.
    """
    path = Path(path)
    try:
        _atomic_write(path, data)
    except OSError as exc:
        if environment_error(exc) is not None and not isinstance(exc, StorageError):
            raise StorageError(exc, path) from None
        raise


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _clean(value: Any) -> Any:
    """JSON-safe copy: non-finite floats become None, tuples lists, paths strings."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def to_json(obj: Any) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, to_json(obj))


REMEDY = "delete it and rerun (bench recomputes what it needs)"


def read_json(path: Path, remedy: str = REMEDY) -> Any:
    """The JSON in ``path``; ``DamagedFileError`` (naming the file and ``remedy``) when it is not JSON."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DamagedFileError(path, f"not valid JSON ({exc.msg} at line {exc.lineno})", remedy) from None
    except UnicodeDecodeError:
        raise DamagedFileError(path, "not valid JSON (not UTF-8 text)", remedy) from None


def _writable(directory: Path) -> bool:
    """Whether a file can be created in ``directory`` (tried for real: permission bits say nothing to root)."""
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".bench-probe-"):
            return True
    except OSError:
        return False


def check_output_dir(path: Path, what: str) -> Path:
    """``path`` if it is, or can become, a directory bench can write; else ``OutputPathError`` saying why.

    Run before any work, so a bad ``--out`` fails in a second, not after training.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} is a file; valid choices: a directory (existing or new)")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"{what} {str(path)!r} cannot be created: {str(existing)!r} is a file; "
                              "valid choices: a directory (existing or new)")
    if not _writable(existing):
        raise OutputPathError(f"{what} {str(path)!r} is not writable ({str(existing)!r} refuses new files); "
                              "valid choices: a directory you can write to")
    return path


def config_hash(defense: str, dataset: str, config: dict) -> str:
    """12 hex digits identifying a (defense, dataset, config) triple."""
    canonical = json.dumps({"defense": defense, "dataset": dataset, "config": _clean(config)}, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def package_versions(names: Iterable[str] = _PACKAGES) -> dict[str, Optional[str]]:
    versions: dict[str, Optional[str]] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _git(args: list[str], cwd: Optional[Path]) -> Optional[str]:
    """git's output in ``cwd`` (default: bench's own source directory), or None outside a checkout."""
    try:
        out = subprocess.run(["git", *args], cwd=cwd or Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_commit(cwd: Optional[Path] = None) -> Optional[str]:
    """The current commit of the source tree bench runs from, or None."""
    out = _git(["rev-parse", "HEAD"], cwd)
    return (out or "").strip() or None


def source_modified(cwd: Optional[Path] = None) -> Optional[bool]:
    """Whether bench's own source differs from ``git_commit`` (uncommitted edits under the package
    directory), or None outside a git checkout: a summary made from edited code must not claim to be
    reproducible from its commit alone. Results and leaderboards do not count, only the code."""
    out = _git(["status", "--porcelain", "--untracked-files=no", "--", "."], cwd)
    return None if out is None else bool(out.strip())


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()


def provenance(seed: int, config_hash_value: str, **extra: Any) -> dict[str, Any]:
    from .schema import SCHEMA_VERSION

    return {
        "schema_version": SCHEMA_VERSION,
        "packages": package_versions(),
        "git_commit": git_commit(),
        "source_modified": source_modified(),
        "seed": seed,
        "config_hash": config_hash_value,
        "date": utc_now(),
        **extra,
    }
