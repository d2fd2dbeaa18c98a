"""Files and directories lmdbstore creates: owner-only, exclusive, never through a link.

A store holds identity keys and sessions: whoever reads its files reads the user's
messages. So whatever the umask, every file lmdbstore creates is ``0600`` and every
directory ``0700``; a file is created with ``O_EXCL | O_NOFOLLOW``, so a file or a
symbolic link planted at its path makes the creation fail instead of writing through it;
and what is built and then moved into place is built inside a fresh private directory
(`private_build_dir`), where nobody else can plant anything.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

FILE_MODE = 0o600
DIR_MODE = 0o700
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def open_file(path: str) -> int:
    """A descriptor for writing the new owner-only file ``path``: `FileExistsError` when
    anything, a link included, is already there."""
    fd = os.open(path, _WRITE, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # the umask cannot widen the mode, but may narrow it
    except BaseException:
        os.close(fd)
        raise
    return fd


def create_file(path: str, content: bytes = b"") -> None:
    """Create the new file ``path`` (owner-only) holding ``content``. `FileExistsError`
    when anything, a link included, is already there."""
    fd = open_file(path)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    os.close(fd)


def make_dir(path: str) -> None:
    """Create the new directory ``path``, owner-only. `FileExistsError` when anything, a
    link included, is already there."""
    os.mkdir(path, DIR_MODE)
    os.chmod(path, DIR_MODE)


def restrict(path: str) -> None:
    """Make ``path`` (a file another library created, e.g. LMDB's copy) owner-only."""
    os.chmod(path, FILE_MODE, follow_symlinks=False)


@contextlib.contextmanager
def private_build_dir(beside: str) -> Iterator[str]:
    """A new owner-only directory next to ``beside`` (same file system, so that what is
    built there can be renamed into place), removed with what is left in it."""
    parent = os.path.dirname(os.path.abspath(beside))
    directory = tempfile.mkdtemp(prefix=f".{os.path.basename(beside)}.", dir=parent)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
