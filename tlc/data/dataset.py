"""Data sets on disk: the canonical layout, the data folder, and how names resolve.

A data set is a folder holding one file per split, named after the split::

    imdb/train.csv.gz   imdb/test.csv.gz   imdb/unsup.csv.gz

(any readable format: .csv, .tsv, .jsonl, .txt/.ft for fastText, optionally .gz/.bz2/.xz),
with a ``text`` column and, except for ``unsup``, a ``label`` column; extra columns are kept.
An unpacked ``aclImdb`` folder is a data set too. A data set is addressed by path, or by name
under the data folder: ``--data-dir``, else ``$TLC_DATA_DIR``, else ``~/.local/share/tlc/data``
(``$XDG_DATA_HOME/tlc/data``). ``NAME:SPLIT`` picks one split, e.g. ``imdb:unsup``.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tlc.data.examples import SKIP_OPTION, Examples, load_examples
from tlc.data.io import strip_compression
from tlc.data.readers import EXTENSIONS, looks_like_aclimdb
from tlc.errors import DataError

SPLITS = ("train", "valid", "test", "unsup")
"""Split names tlc knows. ``unsup`` is unlabelled text (tokenizer, self-training);
``test`` is only ever read by evaluation."""

UNLABELLED_SPLITS = ("unsup",)


def default_data_dir() -> Path:
    env = os.environ.get("TLC_DATA_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(Path.home(), ".local", "share")
    return Path(xdg) / "tlc" / "data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()


@dataclass(frozen=True)
class Dataset:
    name: str
    root: Path
    files: dict[str, Path]
    """split -> file (or aclImdb folder)."""
    fmt: str | None = None
    """Format of the files when their names do not say (a single file given with --format)."""

    @property
    def splits(self) -> list[str]:
        return [s for s in SPLITS if s in self.files] + sorted(
            s for s in self.files if s not in SPLITS
        )

    def path(self, split: str) -> Path:
        if split not in self.files:
            have = ", ".join(self.splits) or "none"
            raise DataError(
                f"data set {self.name!r} has no {split!r} split (it has: {have})",
                path=self.root,
                hint=f"add a file named {split}.csv (or .tsv/.jsonl) to the folder",
            )
        return self.files[split]

    def load(
        self,
        split: str,
        *,
        text_column: str = "text",
        label_column: str | None = "label",
        on_bad_rows: str = "error",
        skip_option: str = SKIP_OPTION,
    ) -> Examples:
        if split in UNLABELLED_SPLITS:
            label_column = None
        return load_examples(
            self.path(split),
            fmt=self.fmt,
            text_column=text_column,
            label_column=label_column,
            on_bad_rows=on_bad_rows,
            skip_option=skip_option,
        )


def _split_of(p: Path) -> str | None:
    """``train.csv.gz`` -> ``train``; None for files that are not split files."""
    if p.is_dir():
        return p.name if p.name in SPLITS and looks_like_aclimdb(p) else None
    base = strip_compression(p.name)
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in EXTENSIONS:
        return None
    return stem if stem in SPLITS else None


def dataset_from_folder(folder: Path, name: str | None = None) -> Dataset:
    name = name or folder.name
    # An unpacked aclImdb archive: aclImdb/{train,test}/{pos,neg}, aclImdb/train/unsup.
    if (folder / "train" / "pos").is_dir() or (folder / "test" / "pos").is_dir():
        files = {s: folder / s for s in ("train", "test") if (folder / s).is_dir()}
        if (folder / "train" / "unsup").is_dir():
            files["unsup"] = folder / "train" / "unsup"
        return Dataset(name, folder, files)
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        split = _split_of(p)
        if split is None:
            continue
        if split in files:
            raise DataError(
                f"two files for the {split!r} split: {files[split].name} and {p.name}",
                path=folder,
                hint="keep one file per split",
            )
        files[split] = p
    if not files:
        found = ", ".join(sorted(p.name for p in folder.iterdir())[:8]) or "nothing"
        raise DataError(
            f"no split files (train/test/valid/unsup) in this folder; it holds: {found}",
            path=folder,
            hint="name the files train.csv, test.csv, ... (optionally .gz), with text and "
            "label columns",
        )
    return Dataset(name, folder, files)


def parse_source(spec: str) -> tuple[str, str | None]:
    """``imdb:unsup`` -> ("imdb", "unsup"); ``imdb`` -> ("imdb", None)."""
    head, sep, tail = spec.rpartition(":")
    if sep and tail in SPLITS and head:
        return head, tail
    return spec, None


def open_dataset(spec: str | os.PathLike[str], data_dir: str | os.PathLike[str] | None = None,
                 fmt: str | None = None) -> Dataset:
    """A data set by path (folder or single file) or by name under the data folder.

    ``fmt`` names the format of a single file whose name does not tell it."""
    p = Path(spec).expanduser()
    if p.is_file():
        # A single file is a data set with one split, named by the file if it is a split name.
        return Dataset(p.name, p.parent, {_split_of(p) or "train": p}, fmt)
    if fmt is not None:
        raise DataError(f"--format {fmt} applies to a single file, not to a folder or name",
                        path=p, hint="name the file itself, or leave --format out (the files "
                        "of a data set folder are recognised by their names)")
    if p.is_dir():
        return dataset_from_folder(p)
    name = os.fspath(spec)
    root = resolve_data_dir(data_dir)
    folder = root / _registry_folder(name)
    if folder.is_dir():
        return dataset_from_folder(folder, name)
    head, sep, tail = name.rpartition(":")
    if sep and head and tail not in SPLITS:
        # "imdb:tset": the data set is there, only the split name is wrong.
        try:
            known = open_dataset(head, data_dir)
        except DataError:
            known = None
        if known is not None:
            raise DataError(f"data set {head!r} has no split {tail!r} (it has: "
                            f"{', '.join(known.splits)})", path=known.root,
                            hint=f"use {head}:{known.splits[0]}, or name another of its "
                            "splits")
    available = sorted(d.name for d in root.iterdir() if d.is_dir() and not
                       d.name.startswith(".")) if root.is_dir() else []
    raise DataError(
        f"no data set {name!r}: not a path, and no folder {folder}"
        + (f" (data folder holds: {', '.join(available)})" if available else ""),
        hint=f"run `tlc data fetch {name}` if it is a known public data set "
        "(`tlc data list`), or set --data-dir / TLC_DATA_DIR to the folder holding it",
    )


def _registry_folder(name: str) -> str:
    """Registry names may live in a differently named folder (glove.6B -> glove)."""
    from tlc.data.registry import REGISTRY

    entry = REGISTRY.get(name)
    return entry.folder if entry is not None else name


def iter_texts(specs: Iterable[str], data_dir: str | os.PathLike[str] | None = None, *,
               text_column: str = "text", fmt: str | None = None, on_bad_rows: str = "error",
               skipped: Counter | None = None,
               default_splits: Callable[[Dataset], list[str]] | None = None,
               allow_test: bool = True, skip_option: str = SKIP_OPTION) -> Iterator[str]:
    """The text of NAME, NAME:SPLIT, folder or file specs, streamed; labels are not read.

    A spec without a split means ``default_splits(dataset)``, by default every split except
    test (test text is read only when named, and never when ``allow_test`` is False)."""
    from tlc.data.examples import iter_examples
    from tlc.data.readers import read_records

    for spec in specs:
        name, split = parse_source(spec)
        ds = open_dataset(name, data_dir, fmt if Path(name).is_file() else None)
        if split is not None:
            splits = [split]
        elif default_splits is not None:
            splits = default_splits(ds)
        else:
            splits = [s for s in ds.splits if s != "test"]
        if not allow_test and "test" in splits:
            raise DataError(f"{spec}: refusing to learn from a test split",
                            hint="test text must stay unseen; use the train or unsup split")
        for s in splits:
            for text, _ in iter_examples(read_records(ds.path(s), ds.fmt),
                                         text_column=text_column, label_column=None,
                                         on_bad_rows=on_bad_rows, skipped=skipped,
                                         skip_option=skip_option):
                yield text
