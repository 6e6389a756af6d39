"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Every file the project writes in place (configs, reports, checkpoints, shards, ``dataset.json``,
``progress.json``, ``failures.jsonl``) goes through :class:`AtomicFile`: the data goes to a temporary name in
the same folder (``.<name>.<8 hex>.tmp``), is flushed and fsynced, then renamed over the target, and the
folder is fsynced so the rename survives a crash. The temporary file is created with mode ``0o666`` filtered
by the umask, exactly as ``open(path, "w")`` would create ``path`` (``tempfile.mkstemp`` would give 0600).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any

_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")


def temp_target(name: str) -> str | None:
    """The file name an :class:`AtomicFile` temporary ``name`` would have become, or None for other names
    (a crashed writer's leftovers can be recognised and removed)."""
    m = _TEMP_RE.match(name)
    return m.group("name") if m else None


class AtomicFile:
    """A file written under a temporary name beside ``path`` and renamed over it by :meth:`commit`.

    As a context manager it yields the open file, commits on a clean exit and removes the temporary file on
    an exception::

        with AtomicFile(path, binary=True) as f:
            torch.save(state, f)

    Args:
        path: the final location (its folder must exist).
        binary: open the temporary file in binary mode (else text, UTF-8).
    """

    def __init__(self, path: str | os.PathLike, *, binary: bool = False) -> None:
        self.path = Path(path)
        self.tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        # O_EXCL: never write into another writer's temporary file; mode 0o666 & ~umask, as open() would.
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        self.file: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")

    def commit(self) -> Path:
        """Flush, fsync and close the temporary file, rename it to :attr:`path`; returns :attr:`path`."""
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
        except OSError as e:
            self.discard()
            raise named_os_error(e, self.path) from e
        finally:
            self.file.close()
        os.replace(self.tmp, self.path)
        _fsync_dir(self.path.parent)
        return self.path

    def discard(self) -> None:
        """Close and delete the temporary file; :attr:`path` is left as it was."""
        try:
            self.file.close()
        except OSError:  # flushing the buffer failed (disk full): the descriptor is closed all the same
            pass
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> IO[Any]:
        return self.file

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
            return
        self.discard()
        # A failed write (disk full) names no file, and a writer may wrap it (torch.save: a RuntimeError of its
        # zip writer, the OSError as its context): raise the OSError, with this file's name.
        cause = _os_error_in(exc)
        if cause is not None and (cause is not exc or cause.filename is None):
            raise named_os_error(cause, self.path) from exc


def _os_error_in(exc: BaseException | None) -> OSError | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno is not None:
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def named_os_error(e: OSError, path: str | os.PathLike) -> OSError:
    """``e`` with ``path`` as its file name when it has none (``write`` errors name no file), so that a full or
    read-only disk can be reported with the file that could not be written."""
    if e.filename is not None or e.errno is None:
        return e
    return type(e)(e.errno, e.strerror, os.fspath(path))


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk; some filesystems refuse (EINVAL).
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with AtomicFile(path) as f:
        f.write(text)
    return Path(path)


def write_json_atomic(path: str | os.PathLike, obj: Any, *, indent: int | None = 1) -> Path:
    """Write ``obj`` as JSON (and a final newline) to ``path`` atomically; returns ``path``."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    """Write one JSON object per line to ``path`` atomically; returns ``path``."""
    return write_text_atomic(path, "".join(json.dumps(dict(r)) + "\n" for r in rows))
