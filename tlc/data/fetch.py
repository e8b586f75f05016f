"""Downloading registry data sets: resumable, checksum-verified, converted atomically.

Layout under the data dir::

    .downloads/<file>         archives (``<file>.part`` while incomplete; resumed next time)
    .<folder>.tmp-XXXX/       conversion in progress (never visible under the final name)
    <folder>/                 the canonical files, once complete
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import secrets
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from tqdm import tqdm

from tlc import __version__
from tlc.data.registry import REGISTRY, DatasetEntry, get_entry
from tlc.errors import ChecksumError, FetchError
from tlc.ownership import OutputLock, foreign_entries, listing

_ALGORITHMS = {"md5": 32, "sha256": 64}  # name -> hex digest length
_USER_AGENT = f"tlc/{__version__} (+python urllib)"


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class _TransferError(Exception):
    """A URL could not be reached or broke off: worth trying a mirror."""


def _parse_checksum(checksum: str) -> tuple[str, str]:
    algo, _, digest = checksum.partition(":")
    digest = digest.lower()
    if _ALGORITHMS.get(algo) != len(digest) or not re.fullmatch(r"[0-9a-f]+", digest):
        raise FetchError(
            f"malformed checksum {checksum!r}",
            hint='write it as "md5:<32 hex digits>" or "sha256:<64 hex digits>"',
        )
    return algo, digest


def _hash_file(path: Path, algo: str, chunk_size: int = 1 << 20):
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h


def download(
    url: str,
    dest: str | os.PathLike[str],
    checksum: str,
    *,
    size: int | None = None,
    progress: bool = True,
    chunk_size: int = 1 << 20,
    timeout: float = 60,
    mirrors: Sequence[str] = (),
) -> Path:
    """Download ``url`` to ``dest`` and verify ``checksum`` ("md5:..." or "sha256:...").

    An existing ``dest`` with the right checksum is returned without touching the network.
    Data goes to ``dest.part`` first; an interrupted download is resumed from there with an
    HTTP Range request the next time. ``mirrors`` are tried in order when a URL cannot be
    reached (not when the checksum is wrong: a mirror serving the same bad file would not help).
    """
    dest = Path(dest)
    algo, expected = _parse_checksum(checksum)
    if dest.exists():
        if _hash_file(dest, algo).hexdigest() == expected:
            return dest
        _say(f"{dest} does not match its checksum; downloading it again")
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")

    failures = []
    for i, source in enumerate([url, *mirrors]):
        if i:
            _say(f"trying mirror {source}")
        try:
            h = _transfer(source, part, algo, size, progress, chunk_size, timeout)
            break
        except _TransferError as e:
            failures.append(f"{source}: {e}")
    else:
        have = part.stat().st_size if part.exists() else 0
        hint = (
            f"run the same command again to resume from {have} bytes"
            if have
            else "check your network connection and that the URL opens in a browser, then run "
            "the same command again (if the file has moved, please report it)"
        )
        raise FetchError("could not download " + "; ".join(failures), path=dest, hint=hint)

    actual = h.hexdigest()
    if actual != expected:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{source} downloaded, but its {algo} is {actual}, expected {expected}",
            path=dest,
            hint="the file was damaged in transit or changed on the server; run the same "
            "command again to download it afresh, and report it if the mismatch persists",
        )
    os.replace(part, dest)  # atomic: dest is either absent or complete and verified
    return dest


def _transfer(url, part, algo, size, progress, chunk_size, timeout):
    """Fetch ``url`` into ``part`` (resuming when it exists); returns the hash of the whole file.

    The hash is computed while the data streams in (after hashing the part already on disk),
    so a large file is not read a second time.
    """
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and offset:
            # Nothing left past the offset: the part is (at least) the whole file already.
            # The checksum decides whether it is right.
            return _hash_file(part, algo)
        raise _TransferError(f"HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise _TransferError(f"cannot connect ({reason})") from None

    with response:
        resumed = offset and response.status == 206
        if resumed and not _content_range_starts_at(response, offset):
            # A server answering a different range than asked: safest to start over.
            response.close()
            part.unlink()
            return _transfer(url, part, algo, size, progress, chunk_size, timeout)
        if not resumed:
            offset = 0  # 200: the server ignored Range and sends the whole file
        length = response.headers.get("Content-Length")
        expected_bytes = int(length) if length and length.isdigit() else None
        total = offset + expected_bytes if expected_bytes is not None else size
        h = _hash_file(part, algo) if offset else hashlib.new(algo)
        received = 0
        try:
            f = open(part, "ab" if offset else "wb")
        except OSError as e:
            raise FetchError(f"cannot write: {e.strerror}", path=part) from None
        with (
            f,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=None if progress else True,  # no bar in logs and pipes
                file=sys.stderr,
            ) as bar,
        ):
            while True:
                try:
                    chunk = response.read(chunk_size)
                except (OSError, http.client.HTTPException) as e:
                    raise _TransferError(f"connection broke off ({e})") from None
                if not chunk:
                    break
                try:
                    f.write(chunk)
                except OSError as e:
                    raise FetchError(
                        f"cannot write: {e.strerror}",
                        path=part,
                        hint="free some disk space (or pick another data dir) and run the "
                        "same command again to resume",
                    ) from None
                h.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        # urllib returns a short read, not an error, when the peer closes early.
        if expected_bytes is not None and received < expected_bytes:
            raise _TransferError(f"connection broke off after {offset + received} of {total} bytes")
    return h


def _content_range_starts_at(response, offset: int) -> bool:
    m = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return bool(m) and int(m[1]) == offset


def fetch(
    name: str,
    data_dir: str | os.PathLike[str],
    *,
    force: bool = False,
    progress: bool = True,
    registry: Mapping[str, DatasetEntry] | None = None,
    keep_downloads: bool = False,
    **options: object,
) -> Path:
    """Download data set ``name`` and convert it into ``data_dir/<folder>``; returns the folder.

    Does nothing when the folder already holds every output (``force`` redoes it). The folder
    appears only once the conversion is complete: it is built in a temporary sibling and renamed.
    """
    entry = get_entry(name, REGISTRY if registry is None else registry)
    outputs = entry.outputs_for(**options)  # checks the options before any download
    data_dir = Path(data_dir)
    final = data_dir / entry.folder
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(
            f"cannot create the data folder: {e.strerror}",
            path=data_dir,
            hint="pick a writable folder with --data-dir (or TLC_DATA_DIR)",
        ) from None

    # Two fetches of one data set would append to the same partial download: the second is
    # refused at once, before it looks at the folder.
    with OutputLock(final, "tlc data fetch", f"this data set ({name})",
                    hint="wait for it to finish"):
        return _fetch(entry, name, data_dir, final, outputs, force=force, progress=progress,
                      keep_downloads=keep_downloads, options=options)


def _fetch(entry: DatasetEntry, name: str, data_dir: Path, final: Path,
           outputs: Sequence[str], *, force: bool, progress: bool, keep_downloads: bool,
           options: dict) -> Path:
    # Replaced (with --force) only when the folder holds nothing but what fetch writes there:
    # the converted files (with any options, e.g. every GloVe size). A user's own files in
    # it, or a file under the folder's name, are never deleted.
    written = set(entry.outputs) | set(outputs)
    if final.is_dir():
        foreign = foreign_entries(final, lambda p: p.name in written and p.is_file())
        if not force:
            if all((final / out).is_file() for out in outputs):
                _say(f"{name}: already in {final} (use --force to fetch it again)")
                return final
            if any(final.iterdir()):
                missing = [out for out in outputs if not (final / out).is_file()]
                raise FetchError(
                    f"folder exists but lacks {', '.join(missing)}"
                    + (f", and holds {listing(foreign)}, which tlc data fetch did not write"
                       if foreign else ""),
                    path=final,
                    hint=f"move those out of the folder (or use another --data-dir); --force "
                    f"replaces only a folder that holds just {name}'s files" if foreign else
                    f"use --force to replace the folder with a fresh copy of {name}",
                )
        elif foreign:
            raise FetchError(
                f"--force refused: the folder holds {listing(foreign)}, which tlc data fetch "
                "did not write (nothing was deleted)",
                path=final,
                hint="move those out of the folder (or use another --data-dir), then run the "
                "command again",
            )
    elif final.exists() or final.is_symlink():
        raise FetchError(
            "exists and is not a folder",
            path=final,
            hint=f"move it away, or use another --data-dir: tlc data fetch writes {name} "
            "into a folder of this name, and replaces only a folder it wrote",
        )

    downloads_dir = data_dir / ".downloads"
    paths = []
    for item in entry.downloads:
        _say(f"{name}: downloading {item.url}")
        paths.append(
            download(
                item.url,
                downloads_dir / item.filename,
                item.checksum,
                size=item.size,
                progress=progress,
                mirrors=item.mirrors,
            )
        )

    _say(f"{name}: converting into {final} (large data sets take a few minutes)")
    # Not tempfile.mkdtemp: its 0700 mode would stay on the final folder after the rename.
    tmp = data_dir / f".{entry.folder}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        try:
            entry.convert(paths, tmp, **options)
        except OSError as e:  # a full disk, a permission problem: not a bug, say so plainly
            raise FetchError(
                f"converting {name} failed: {e.strerror or e}",
                path=getattr(e, "filename", None) or tmp,
                hint="free some disk space (or pick another data dir) and run the same "
                "command again; the download is kept",
            ) from None
        missing = [out for out in outputs if not (tmp / out).is_file()]
        if missing:
            raise FetchError(f"converting {name} did not produce {', '.join(missing)}")
        _replace_folder(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename

    if not keep_downloads:
        for path in paths:
            path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            downloads_dir.rmdir()  # only when empty
    _say(f"{name}: done, {len(outputs)} file(s) in {final}")
    return final


def _replace_folder(tmp: Path, final: Path) -> None:
    """Rename ``tmp`` to ``final``; an old ``final`` is moved aside first and then deleted, so
    no moment exists where ``final`` is half-written."""
    old = None
    if final.is_dir():
        old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
        os.replace(final, old / final.name)
    elif final.exists():
        final.unlink()
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
