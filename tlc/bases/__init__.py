"""Named bases: finished source runs shipped inside the package, picked by name.

``tlc train --init NAME`` and ``TextClassifier(base=NAME)`` take either a run folder or the
name of a folder ``tlc/bases/NAME/`` (a finished run folder, installed as package data).
An existing path always wins, so a folder in the current directory that happens to share a
base's name is never shadowed. Only a string that could not be a path to anything here (no
folder separator, no leading ``.`` or ``~``) is looked up as a name; a missing path keeps the
run loader's "run folder not found" message, which names the path the user typed.

This module reads only the file system: no TensorFlow, no run loading.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import TlcError
from ..models import looks_like_name  # the same rule as the bundled models'

# The folder holding the bundled bases (this package's own folder); tests point it elsewhere.
BASES_DIR = Path(__file__).resolve().parent
_FINISHED = "run.json"   # a base is a finished run folder: run.json is written last


def bundled_bases() -> list[str]:
    """The names of the bases installed with this tlc, sorted."""
    if not BASES_DIR.is_dir():
        return []
    # (a hidden folder is a base `tlc base build` is still assembling, never a base)
    return sorted(p.name for p in BASES_DIR.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / _FINISHED).is_file())


def resolve_base(spec: str | os.PathLike[str], *, option: str = "base") -> tuple[Path, str | None]:
    """(run folder, base name or None) for ``spec``: an existing path as it is, a bundled
    base's name as its folder. An unknown name is a TlcError listing the bundled names;
    ``option`` names where the value came from (``--init``, ``base``), for the message."""
    text = os.fspath(spec)
    path = Path(text)
    if path.exists() or not looks_like_name(text):
        return path, None
    names = bundled_bases()
    if text in names:
        return BASES_DIR / text, text
    known = (f"the bases bundled with this tlc are: {', '.join(names)}" if names
             else "this tlc has no bundled bases")
    raise TlcError(f"{option} {text!r} is neither a folder nor a bundled base's name "
                   f"({known})",
                   hint="give the path of a finished run folder (the --out of `tlc train`), "
                   "or one of the bundled names")


def load_base(spec: str | os.PathLike[str], *, option: str = "base"):
    """(the finished run, base name or None) that ``spec`` names (see :func:`resolve_base`)."""
    from ..train.run import load_run

    path, name = resolve_base(spec, option=option)
    return load_run(path, purpose="start a transfer from", option=option), name
