"""Writing files so that a crash never leaves a torn one: every file the package writes for keeps
(checkpoints, model files, manifests, unpacked downloads) goes through :func:`atomic_write`."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

TEMPORARY_SUFFIX = ".tmp"  # atomic_write's files before their rename: ".NAME.RANDOM.tmp"
MAX_TEXT_BYTES = 4 << 30  # text inputs (LM text, counts, transcripts) read at most


# One redirection of file descriptor 2 at a time: two threads' would each restore the other's sink.
_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def held_back_stderr() -> Iterator[IO[bytes]]:
    """What C and C++ libraries write to file descriptor 2 inside the block (KenLM's loading
    banner and progress bar) goes to the yielded file instead of the terminal, for the caller to
    quote in an error or drop. Python's own ``sys.stderr`` is flushed first. One thread at a time."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield sink
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)


@contextlib.contextmanager
def library_messages(pattern: str) -> Iterator[list[str]]:
    """The messages matching ``pattern`` (a regular expression) that C libraries write to file
    descriptor 2 inside the block, collected into the yielded list instead of shown; whatever
    else was written there meanwhile (another thread's progress bar) is written out afterwards."""
    found: list[str] = []
    with held_back_stderr() as sink:
        try:
            yield found
        finally:
            sink.seek(0)
            text = sink.read().decode(errors="replace")
    found += [match.group(0).strip() for match in re.finditer(pattern, text)]
    rest = re.sub(pattern, "", text)
    if rest:
        os.write(2, rest.encode())


def check_output(path: str | Path, folder: bool = False) -> Path:
    """``path`` if a file (or with ``folder``, a folder) can be written there; else, before any
    work is done, a one-line error naming it: a folder where a file goes (or a file where a folder
    goes), a parent that is a file, or a parent folder this process may not write in."""
    path = Path(path)
    if path.exists() and path.is_dir() != folder:
        raise ValueError(f"{path}: a file, not a folder" if folder else f"{path}: a folder, not a file")
    parent = path if folder else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{path}: no permission to write in {parent}")
    return path


@contextlib.contextmanager
def open_text(path: str | Path, max_bytes: int = MAX_TEXT_BYTES) -> Iterator[IO[str]]:
    """``path`` opened as UTF-8 text, if it is a regular file of at most ``max_bytes``: a FIFO or a
    device (``/dev/zero``) could block or never end. Otherwise, and for bytes that are not UTF-8,
    a one-line error naming the file."""
    path = Path(path)
    if not path.is_file():
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        raise ValueError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path}: {size:,} bytes, more than the {max_bytes:,} a text input may hold")
    try:
        with path.open(encoding="utf-8") as text:
            yield text
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | Path, text: bool = False) -> Iterator[IO]:
    """A file to write ``path``'s new contents to (binary, or UTF-8 text with ``text``): a temporary
    file in the same folder, flushed to disk and renamed over ``path`` when the block ends without
    an error, deleted when it raises. A crash at any moment leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp's 0600 would keep the file from its group
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temporaries(folder: str | Path, pattern: str = "*") -> list[Path]:
    """Delete what a killed :func:`atomic_write` left in ``folder`` (``.NAME.*.tmp`` beside the files
    matching ``pattern`` it writes); returns what was deleted. Call it only when no other process is
    writing there."""
    stale = sorted(p for p in Path(folder).glob(f".{pattern}*{TEMPORARY_SUFFIX}") if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
