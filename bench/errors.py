"""What can go wrong outside the science, as exceptions the CLI turns into one line each.

Three kinds, each with its exit status in ``bench.cli``:

- ``DamagedFileError`` (a ``ValueError``, exit 2): a file bench wrote earlier
  (zoo weights, model card, record, certificate CSV, summary) is unreadable,
  hostile or does not fit; the message names the file, what is wrong and what
  to do.
- ``OutputPathError`` (exit 2): an output location (``--out``, ``$BENCH_HOME``
  and its subdirectories) is a file or not writable; checked before any work.
- ``StorageError`` (an ``OSError``, exit 1): the environment refused a write
  (disk full, permission, read-only file system); files already finished
  stay whole because every write is atomic.

``warn`` is how library code says "this was damaged and will be recomputed":
a ``BenchWarning`` that the CLI prints as one ``bench: warning:`` line.
No torch here.
"""
from __future__ import annotations

import errno
import warnings
from pathlib import Path
from typing import Optional, Union

PathLike = Union[str, Path]


class InputError(ValueError):
    """Bad input to ``bench.evaluate`` (a model, tensors or threat it cannot use); the message is one line."""


class ModelSpecError(InputError):
    """A bad ``--model MODULE:FACTORY`` or ``--weights FILE`` (a usage error: one line)."""


class DamagedFileError(ValueError):
    """A file bench reads back is damaged, hostile or does not fit (a usage-level error: exit 2)."""

    def __init__(self, path: PathLike, problem: str, remedy: str) -> None:
        self.path, self.problem, self.remedy = Path(path), problem, remedy
        super().__init__(f"{path}: {problem}; {remedy}")


class TrainingDivergedError(RuntimeError):
    """Training left non-finite weights: nothing is cached, and the run stops with one line (exit 1)."""


class BadOptionError(ValueError):
    """An option value that no type check could catch (e.g. an attack selection): exit 2, before any work."""


class OutputPathError(ValueError):
    """An output location is unusable (a file, or a directory bench cannot write): exit 2, before any work."""


class StorageError(OSError):
    """A write failed for a reason of the environment (disk full, permissions): exit 1."""

    def __init__(self, err: OSError, path: PathLike) -> None:
        from .rundir import shown  # a rerun's staging sibling is named as the run it becomes

        code = err.errno if err.errno is not None else errno.EIO
        super().__init__(code, err.strerror or str(err), str(shown(Path(path))))

    def __str__(self) -> str:
        hint = {errno.ENOSPC: "free some space and rerun", errno.EDQUOT: "free some space and rerun"}.get(
            self.errno, "check the permissions and rerun")
        return (f"cannot write {self.filename}: {self.strerror}; finished results are kept whole, "
                f"{hint} (it resumes)")


class BenchWarning(UserWarning):
    """Something bench repaired on its own (a damaged record recomputed); printed as one line."""


def warn(message: str) -> None:
    """Report a repaired problem: one ``bench: warning:`` line on the CLI's stderr."""
    warnings.warn(message, BenchWarning, stacklevel=2)


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an exception's message (library errors can run to dozens of lines of advice)."""
    if isinstance(exc, DamagedFileError):
        return exc.problem
    text = str(exc).strip().splitlines()
    line = text[0].split(". ")[0].rstrip(".:") if text else ""
    line = line or type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."


ENVIRONMENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.EMFILE, errno.ENFILE}
)


def environment_error(exc: BaseException) -> Optional[OSError]:
    """``exc`` when it is an OSError the environment caused (disk full, permissions), else None."""
    if isinstance(exc, OSError) and exc.errno in ENVIRONMENT_ERRNOS:
        return exc
    return None
