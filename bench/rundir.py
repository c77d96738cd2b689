"""Directories several processes may write: locks, and reruns that keep the old results until the new ones exist.

Locks (``filelock``, an OS-level lock released when the process dies, even
by kill -9) guard a model-zoo entry while it is trained and a run directory
while it is written: a second process waits, says so in one log line, and
then reuses what the first one finished.

A rerun of a finished run writes into a sibling ``.<run>.next`` that starts
with hard links to the old records (those whose fingerprint still matches
are reused, nothing is recomputed for nothing) and replaces the run
directory only once its new ``summary.json`` is written. Until then the old
summary, per_sample.csv and records stay exactly as they were; an
interrupted rerun resumes in the sibling. A crash between the two renames
of the swap is finished (or undone) by the next run of the same key.
No torch here.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

Log = Callable[[str], None]

# What a run directory holds; a directory holding anything else is written in place, never swapped.
RUN_FILES = frozenset({"summary.json", "per_sample.csv", "records"})


@contextlib.contextmanager
def locked(lock_path: Path, what: str, log: Log) -> Iterator[bool]:
    """Hold the exclusive lock at ``lock_path``; yields True when another process held it first (we waited)."""
    from filelock import FileLock, Timeout

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path))
    waited = False
    try:
        lock.acquire(timeout=0)
    except Timeout:
        waited = True
        log(f"waiting: another process is {what} (lock {lock_path})")
        lock.acquire()
    try:
        yield waited
    finally:
        lock.release()


def shown(path: Path) -> Path:
    """``path`` as the user will find it: inside a rerun's staging sibling ``.<run>.next``, the run's own path."""
    path = Path(path)
    parts = [p[1:-5] if p.startswith(".") and p.endswith(".next") and len(p) > 6 else p for p in path.parts]
    return Path(*parts)


def lock_path(out: Path) -> Path:
    """The lock of a run directory: a hidden sibling, so it survives the directory's swap."""
    out = Path(out)
    return out.parent / f".{out.name}.lock"


def _siblings(out: Path) -> tuple[Path, Path]:
    return out.parent / f".{out.name}.next", out.parent / f".{out.name}.old"


def recover(out: Path) -> None:
    """Finish or undo a swap that a crash interrupted (call while holding the run's lock)."""
    nxt, old = _siblings(out)
    if not out.exists() and old.exists():
        os.rename(nxt if (nxt / "summary.json").exists() else old, out)
    if old.exists() and out.exists():
        shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    """Hard link (atomic writes replace files, never change them in place, so a link is a safe copy)."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def is_run_dir(path: Path) -> bool:
    """A finished run directory holding nothing but what a run writes."""
    path = Path(path)
    return (path / "summary.json").is_file() and {p.name for p in path.iterdir()} <= RUN_FILES


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """The directory to write a run into.

    A first run, or an interrupted one, writes into ``out`` itself (and
    resumes from its records). A rerun of a finished run writes into
    ``.<out>.next``, which starts with links to everything but the old
    summary and replaces ``out`` when the body finished without an error.
    """
    out = Path(out)
    recover(out)
    if not is_run_dir(out):
        out.mkdir(parents=True, exist_ok=True)
        yield out
        return
    nxt, old = _siblings(out)
    if not nxt.exists():
        partial = nxt.with_name(nxt.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(out, partial, copy_function=_link_or_copy,
                        ignore=lambda d, names: [n for n in names if n == "summary.json" or n.endswith(".tmp")])
        os.rename(partial, nxt)
    yield nxt
    if not (nxt / "summary.json").exists():
        return  # nothing new was finished: keep the old run as it is
    shutil.rmtree(old, ignore_errors=True)
    os.rename(out, old)
    os.rename(nxt, out)
    shutil.rmtree(old, ignore_errors=True)
