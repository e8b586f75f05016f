"""What tlc may delete or overwrite: only what it made, and never what another tlc is writing.

Every command that replaces an output (``tlc train --force``, ``tlc export --force``, ``tlc
predict --force``, ``tlc tokenizer train --force``, ``tlc data fetch --force``, ``tlc data
subset --force``) first asks whether the thing in the way is its own: a run folder by its
marker and file names, an exported model by its ``tlc.`` metadata, a scored file by its output
columns, and so on (each command knows its own files; the helpers here are shared). Anything
else is refused with a message that names what is there, and nothing is deleted: a user's
notes are never one flag away from ``rm -rf``.

:class:`OutputLock` keeps two tlc processes off one output: the second is told at once which
process holds it, before it reads, writes or deletes anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from tlc.errors import TlcError

SHOWN = 4
"""Entries named in a refusal; the rest are counted."""


def listing(names: Iterable[str], shown: int = SHOWN) -> str:
    """``a, b/, c, d and 3 more`` (sorted, so the message is the same every time)."""
    names = sorted(names)
    text = ", ".join(names[:shown])
    if len(names) > shown:
        text += f" and {len(names) - shown:,} more"
    return text


def entry_name(path: Path) -> str:
    """A folder's entry as shown to the user: folders end in '/'."""
    return path.name + "/" if path.is_dir() and not path.is_symlink() else path.name


def foreign_entries(folder: Path, ours: Callable[[Path], bool]) -> list[str]:
    """The entries of ``folder`` that ``ours`` does not claim (shown with '/' for folders)."""
    return sorted(entry_name(p) for p in folder.iterdir() if not ours(p))


def check_replace(path: Path, *, force: bool, ours: bool, made: str, seems: str | None = None,
                  error: type[TlcError] = TlcError) -> None:
    """The rule for a file in the way of an output: replaced with --force when tlc made it
    (``ours``: e.g. "tlc predict output"), refused whatever the flags otherwise. ``seems``
    says what the file looks like instead."""
    if not path.exists():
        return
    why = f" ({seems})" if seems else ""
    if not ours and force:
        raise error(f"--force refused: this file is not {made}{why}, so it is not overwritten",
                    path=path, hint="choose another --out, or move the file away")
    if not ours:
        raise error(f"already exists, and is not {made}{why}, so --force does not replace it",
                    path=path, hint="choose another --out, or move the file away")
    if not force:
        raise error("already exists", path=path,
                    hint="pass --force to overwrite it, or choose another --out")


def first_line(path: Path, limit: int = 1 << 24) -> str | None:
    """The first line of a text file (gzip, bz2 and xz are read through), or None when it
    cannot be read as UTF-8 text. Reads at most ``limit`` bytes."""
    from tlc.data.io import open_binary

    try:
        with open_binary(path) as f:
            raw = f.readline(limit)
        return raw.decode("utf-8")
    except (OSError, EOFError, ValueError, TlcError):  # not text, a damaged stream
        return None


def json_object(path: Path, limit: int = 1 << 26) -> dict | None:
    """The JSON object a small file holds, or None (too large, not JSON, not an object)."""
    try:
        if path.stat().st_size > limit:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


# --------------------------------------------------------------------------------- locks

try:  # POSIX: flock, released by the kernel when the process dies, even on kill -9
    import fcntl
except ImportError:  # pragma: no cover  (Windows)
    fcntl = None


def lock_path(target: str | os.PathLike[str]) -> Path:
    """``.NAME.lock`` beside ``target``: the target itself may not exist yet, or may be
    deleted and made again while the lock is held. The folder is resolved, so ``runs/x``
    and ``./runs/../runs/x`` (or a symlinked parent) share one lock."""
    p = Path(os.path.abspath(target))
    if not p.name:  # the root folder
        return p / ".tlc.lock"
    return Path(os.path.realpath(p.parent)) / f".{p.name}.lock"


class OutputLock:
    """Hold ``.NAME.lock`` beside an output for a whole command; a second tlc process on the
    same output gets a :class:`TlcError` at once naming the first (pid and start time).

    The lock is ``flock`` on the lock file: the operating system releases it when the holder
    ends, however it ends, so a killed run never blocks the next one (its lock file stays
    behind, and the next run simply locks it). The file is removed on release while still
    locked, and a process that locked a file since removed (it opened the old one just
    before) sees that the path no longer names its file and tries again: two processes can
    never both believe they hold the lock. Where ``flock`` is missing or the file system
    does not support it, the command goes on without a lock.
    """

    def __init__(self, target: str | os.PathLike[str], command: str, what: str,
                 hint: str = "wait for it to finish, or choose another --out") -> None:
        self.target = Path(target)
        self.path = lock_path(target)
        self.command, self.what, self.hint = command, what, hint
        self.fd: int | None = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> None:
        if fcntl is None:
            return
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError:
                return  # a read-only folder: the command itself will say what is wrong
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise self._refusal(holder) from None
            except OSError:  # ENOLCK, EOPNOTSUPP: no locking on this file system
                os.close(fd)
                return
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # locked a lock file its holder removed: lock the new one
        self.fd = fd
        info = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:]}
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)  # still locked: nobody else can hold this file now
        os.close(self.fd)
        self.fd = None

    def _refusal(self, holder: dict) -> TlcError:
        who = holder.get("command") or "tlc process"
        if not str(who).startswith("tlc"):
            who = "tlc process"
        facts = []
        if holder.get("pid"):
            pid = f"pid {holder['pid']}"
            if holder.get("host") and holder["host"] != socket.gethostname():
                pid += f" on {holder['host']}"
            facts.append(pid)
        if holder.get("started"):
            facts.append(f"started {holder['started']}")
        detail = f" ({', '.join(facts)})" if facts else ""
        return TlcError(f"another {who}{detail} is writing {self.what}", path=self.target,
                        hint=self.hint)


def _read_holder(fd: int) -> dict:
    try:
        data = json.loads(os.pread(fd, 65536, 0).decode("utf-8"))
    except (OSError, ValueError):
        return {}  # the holder is still writing it, or it is not ours
    return data if isinstance(data, dict) else {}
