"""Output files, owned in one place: checked before the work starts, written through a temporary file.

:func:`open_output` refuses an output that is an input (same path after resolving links, or the same file
through a hard link), a folder, or a place that cannot be written, and creates the temporary file in the
output's own folder at once, so a missing folder, a read-only file system or a full folder show before
minutes of work. :meth:`Output.commit` writes through the temporary file and renames it over the output
(atomic on one file system); on any failure, a full disk included, and on :meth:`Output.discard` the
temporary file is removed and an existing output is left as it was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path


class OutputError(Exception):
    """An output that must not or cannot be written, with a message for the user."""


class Output:
    """A checked output path and its temporary file; use as a context manager (discards unless committed)."""

    def __init__(self, path: Path, tmp: Path) -> None:
        self.path = path
        self.tmp = tmp
        self.committed = False

    def commit(self, write: Callable[[Path], object]) -> None:
        """``write(tmp)`` fills the temporary file; then it replaces the output. Removes it on failure."""
        try:
            write(self.tmp)
            os.replace(self.tmp, self.path)
            self.committed = True
        except OSError as err:
            self.discard()
            raise OutputError(f"{self.path}: not written ({_reason(err)})") from None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Remove the temporary file (the output, if it existed, is untouched)."""
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> Output:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            self.discard()


def _reason(err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return "no space left on the device"
    if err.errno == errno.EROFS:
        return "read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return err.strerror or str(err)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def open_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Output:
    """Check ``path`` as an output for ``inputs`` and create its temporary file; raise OutputError if it
    is an input, a folder, or not writable."""
    given = Path(path)
    target = given.expanduser().resolve()
    for source in inputs:
        source = Path(source)
        if target == source.expanduser().resolve() or _same_file(target, source):
            raise OutputError(f"{given}: is the input {source}; refusing to overwrite it (choose another -o)")
    if target.is_dir():
        raise OutputError(f"{given}: is a folder; give a file name (e.g. {given / 'out.mid'})")
    if target.exists() and not target.is_file():
        raise OutputError(f"{given}: exists and is not a regular file")
    parent = target.parent
    if not parent.is_dir():
        raise OutputError(f"{given}: the folder {parent} does not exist")
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{given}: the existing file is read-only")
    try:
        handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    except OSError as err:
        raise OutputError(f"{given}: cannot write in {parent} ({_reason(err)})") from None
    os.close(handle)
    return Output(target, Path(name))
