"""Downloading and fetching through the real code path, against a local HTTP server.

The real REGISTRY entries are reused with their converters; only the download URLs and
checksums are swapped for tiny fake archives served on 127.0.0.1.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import re
import socket
from pathlib import Path

import pytest
from http_server import Server, serve
from test_convert import (
    GLOVE_50,
    IMDB_REVIEWS,
    IMDB_TRAIN_ORDER,
    make_amazon_archive,
    make_glove_archive,
    make_imdb_archive,
    read_csv_gz,
)

from tlc.data.fetch import download, fetch
from tlc.data.registry import REGISTRY, DatasetEntry, Download, get_entry
from tlc.errors import ChecksumError, DataError, FetchError, TlcError

FILES = {
    "imdb": "aclImdb_v1.tar.gz",
    "amazon_polarity": "amazon_review_polarity_csv.tgz",
    "glove.6B": "glove.6B.zip",
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """file name -> bytes of each fake archive, served at /data/<file name>."""
    d = tmp_path_factory.mktemp("archives")
    return {
        "aclImdb_v1.tar.gz": make_imdb_archive(d / "aclImdb_v1.tar.gz").read_bytes(),
        "amazon_review_polarity_csv.tgz": make_amazon_archive(d / "a.tgz").read_bytes(),
        "glove.6B.zip": make_glove_archive(d / "glove.6B.zip").read_bytes(),
    }


def _serve(archives: dict[str, bytes], **switches: object):
    return serve({f"/data/{name}": data for name, data in archives.items()}, **switches)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def local_registry(
    server: Server,
    archives: dict[str, bytes],
    *,
    url_path: str = "/data/",
    checksum: str | None = None,
    mirrors: tuple[str, ...] = (),
    convert=None,
) -> dict[str, DatasetEntry]:
    """The real registry, with each download pointing at the local server."""
    registry = {}
    for name, entry in REGISTRY.items():
        filename = FILES[name]
        data = archives[filename]
        # amazon keeps an md5 checksum, like the real entry, so both algorithms are exercised
        real = "md5:" + hashlib.md5(data).hexdigest() if name == "amazon_polarity" else sha256(data)
        item = Download(
            url=server.url(url_path + filename),
            filename=filename,
            checksum=checksum or real,
            size=len(data),
            mirrors=tuple(server.url(m + filename) for m in mirrors),
        )
        registry[name] = dataclasses.replace(
            entry, downloads=(item,), convert=convert or entry.convert
        )
    return registry


def leftovers(data_dir: Path) -> list[str]:
    """Hidden working files and folders that must not outlive a fetch."""
    return sorted(p.name for p in data_dir.glob(".*") if re.search(r"\.(tmp|old)-", p.name))


# --- fetch, the whole way --------------------------------------------------------------------


def test_fetch_all_three_data_sets(tmp_path: Path, archives: dict[str, bytes]) -> None:
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        imdb = fetch("imdb", tmp_path, registry=registry, progress=False)
        amazon = fetch("amazon_polarity", tmp_path, registry=registry, progress=False)
        glove = fetch("glove.6B", tmp_path, registry=registry, progress=False, dims=(50, 100))

    assert imdb == tmp_path / "imdb"
    assert sorted(p.name for p in imdb.iterdir()) == ["test.csv.gz", "train.csv.gz", "unsup.csv.gz"]
    train = read_csv_gz(imdb / "train.csv.gz")
    assert [r[3] for r in train[1:]] == IMDB_TRAIN_ORDER
    assert all(r[0] == IMDB_REVIEWS[r[3]] for r in train[1:])
    assert len(read_csv_gz(imdb / "unsup.csv.gz")) == 4

    assert amazon == tmp_path / "amazon_polarity"
    assert read_csv_gz(amazon / "test.csv.gz")[1] == ["Bad: Broke on day one.", "0", "Bad"]

    assert glove == tmp_path / "glove"
    assert sorted(p.name for p in glove.iterdir()) == [
        "glove.6B.100d.txt.gz",
        "glove.6B.50d.txt.gz",
    ]
    assert gzip.decompress((glove / "glove.6B.50d.txt.gz").read_bytes()) == GLOVE_50.encode()

    assert not (tmp_path / ".downloads").exists()  # archives deleted after conversion
    assert leftovers(tmp_path) == []
    assert all(rng is None for _, rng in server.requests)


def test_complete_output_is_not_downloaded_again(
    tmp_path: Path, archives: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        first = fetch("imdb", tmp_path, registry=registry, progress=False)
        before = (first / "train.csv.gz").stat().st_mtime_ns
        n = len(server.requests)
        assert fetch("imdb", tmp_path, registry=registry, progress=False) == first
        assert len(server.requests) == n
    assert (first / "train.csv.gz").stat().st_mtime_ns == before
    assert "already in" in capsys.readouterr().err


def test_partial_folder_needs_force(tmp_path: Path, archives: dict[str, bytes]) -> None:
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "train.csv.gz").write_bytes(b"old")
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        with pytest.raises(FetchError, match="lacks test.csv.gz, unsup.csv.gz") as e:
            fetch("imdb", tmp_path, registry=registry, progress=False)
        assert "--force" in e.value.hint
        assert server.requests == []  # refused before downloading anything

        fetch("imdb", tmp_path, registry=registry, progress=False, force=True)
    assert read_csv_gz(tmp_path / "imdb" / "train.csv.gz")[0][0] == "text"
    assert (tmp_path / "imdb" / "unsup.csv.gz").is_file()
    assert leftovers(tmp_path) == []


def test_force_replaces_only_a_folder_fetch_wrote(tmp_path: Path, archives: dict[str, bytes]
                                                  ) -> None:
    """Issue 13: --force once deleted the data set folder whatever it held."""
    folder = tmp_path / "imdb"
    folder.mkdir()
    (folder / "train.csv.gz").write_bytes(b"old")
    (folder / "my-notes.txt").write_text("mine")
    (folder / "extra").mkdir()
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        with pytest.raises(FetchError, match="did not write") as e:
            fetch("imdb", tmp_path, registry=registry, progress=False, force=True)
        assert "my-notes.txt" in str(e.value) and "extra/" in str(e.value)
        assert "nothing was deleted" in str(e.value) and "train.csv.gz" not in e.value.message
        with pytest.raises(FetchError, match="lacks test.csv.gz") as e:   # without --force
            fetch("imdb", tmp_path, registry=registry, progress=False)
        assert "my-notes.txt" in str(e.value) and "use --force" not in e.value.hint
        assert server.requests == []  # refused before downloading anything
        assert (folder / "my-notes.txt").read_text() == "mine"
        assert (folder / "train.csv.gz").read_bytes() == b"old"

        # a file where the folder goes is never deleted either
        (tmp_path / "amazon_polarity").write_text("my file")
        for force in (False, True):
            with pytest.raises(FetchError, match="is not a folder") as e:
                fetch("amazon_polarity", tmp_path, registry=registry, progress=False,
                      force=force)
            assert "--force" not in e.value.hint
        assert (tmp_path / "amazon_polarity").read_text() == "my file"

        # glove: every size fetch writes is its own, whichever --dim was asked for now
        fetch("glove.6B", tmp_path, registry=registry, progress=False, dims=(50,))
        fetch("glove.6B", tmp_path, registry=registry, progress=False, dims=(100,), force=True)
    assert sorted(p.name for p in (tmp_path / "glove").iterdir()) == ["glove.6B.100d.txt.gz"]
    assert leftovers(tmp_path) == [] and not list(tmp_path.glob(".*.lock"))


def test_a_second_fetch_of_one_data_set_is_refused(tmp_path: Path,
                                                   archives: dict[str, bytes]) -> None:
    from tlc.ownership import OutputLock

    with _serve(archives) as server:
        registry = local_registry(server, archives)
        with OutputLock(tmp_path / "imdb", "tlc data fetch", "this data set (imdb)"):
            with pytest.raises(TlcError, match=r"another tlc data fetch \(pid \d+"):
                fetch("imdb", tmp_path, registry=registry, progress=False, force=True)
        assert server.requests == []
        fetch("imdb", tmp_path, registry=registry, progress=False)


def test_failed_conversion_leaves_no_folder(tmp_path: Path, archives: dict[str, bytes]) -> None:
    def broken(paths: list[Path], out_dir: Path) -> list[Path]:
        (out_dir / "train.csv.gz").write_bytes(b"half")
        raise DataError("simulated failure half-way")

    with _serve(archives) as server:
        registry = local_registry(server, archives, convert=broken)
        with pytest.raises(DataError, match="simulated"):
            fetch("imdb", tmp_path, registry=registry, progress=False)
        assert not (tmp_path / "imdb").exists()
        assert leftovers(tmp_path) == []
        # the verified download is kept, so the next try does not download again
        assert (tmp_path / ".downloads" / "aclImdb_v1.tar.gz").is_file()

        # with --force, a failure keeps the previous good folder untouched
        good = local_registry(server, archives)
        fetch("imdb", tmp_path, registry=good, progress=False)
        before = (tmp_path / "imdb" / "train.csv.gz").read_bytes()
        with pytest.raises(DataError):
            fetch("imdb", tmp_path, registry=registry, progress=False, force=True)
    assert (tmp_path / "imdb" / "train.csv.gz").read_bytes() == before
    assert leftovers(tmp_path) == []


def test_keep_downloads(tmp_path: Path, archives: dict[str, bytes]) -> None:
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        fetch("glove.6B", tmp_path, registry=registry, progress=False, keep_downloads=True, dims=50)
    assert (tmp_path / ".downloads" / "glove.6B.zip").read_bytes() == archives["glove.6B.zip"]
    assert [p.name for p in (tmp_path / "glove").iterdir()] == ["glove.6B.50d.txt.gz"]


def test_unknown_option_is_refused_before_downloading(
    tmp_path: Path, archives: dict[str, bytes]
) -> None:
    with _serve(archives) as server:
        registry = local_registry(server, archives)
        with pytest.raises(FetchError, match="no option dims"):
            fetch("imdb", tmp_path, registry=registry, dims=50)
        with pytest.raises(FetchError, match="50, 100, 200, 300"):
            fetch("glove.6B", tmp_path, registry=registry, dims=64)
        assert server.requests == []


# --- resuming, restarting, failing -----------------------------------------------------------


def test_broken_download_resumes_with_range(tmp_path: Path, archives: dict[str, bytes]) -> None:
    data = archives["aclImdb_v1.tar.gz"]
    cut = len(data) // 3
    with _serve(archives, cut_after=cut) as server:
        registry = local_registry(server, archives)
        with pytest.raises(FetchError, match="broke off") as e:
            fetch("imdb", tmp_path, registry=registry, progress=False)
        assert f"run the same command again to resume from {cut} bytes" in e.value.hint
        part = tmp_path / ".downloads" / "aclImdb_v1.tar.gz.part"
        assert part.stat().st_size == cut
        assert not (tmp_path / "imdb").exists()

        fetch("imdb", tmp_path, registry=registry, progress=True)  # exercises the resumed bar
    assert server.requests == [
        ("/data/aclImdb_v1.tar.gz", None),
        ("/data/aclImdb_v1.tar.gz", f"bytes={cut}-"),
    ]
    assert not part.exists()
    assert len(read_csv_gz(tmp_path / "imdb" / "train.csv.gz")) == 6


def test_server_ignoring_range_restarts_cleanly(tmp_path: Path, archives: dict[str, bytes]) -> None:
    data = archives["glove.6B.zip"]
    dest = tmp_path / "glove.6B.zip"
    dest.with_name("glove.6B.zip.part").write_bytes(b"x" * 100)  # not even the right bytes
    with _serve(archives, ignore_range=True) as server:
        out = download(server.url("/data/glove.6B.zip"), dest, sha256(data), progress=False)
    assert out == dest
    assert dest.read_bytes() == data
    assert server.requests == [("/data/glove.6B.zip", "bytes=100-")]
    assert not dest.with_name("glove.6B.zip.part").exists()


def test_complete_part_is_verified_not_downloaded(
    tmp_path: Path, archives: dict[str, bytes]
) -> None:
    data = archives["glove.6B.zip"]
    dest = tmp_path / "glove.6B.zip"
    dest.with_name("glove.6B.zip.part").write_bytes(data)  # died just before the rename
    with _serve(archives) as server:  # answers 416: nothing past the end
        download(server.url("/data/glove.6B.zip"), dest, sha256(data), progress=False)
    assert dest.read_bytes() == data


def test_checksum_mismatch(tmp_path: Path, archives: dict[str, bytes]) -> None:
    wrong = sha256(b"something else")
    with _serve(archives) as server:
        registry = local_registry(server, archives, checksum=wrong, mirrors=("/mirror/",))
        with pytest.raises(ChecksumError) as e:
            fetch("imdb", tmp_path, registry=registry, progress=False)
        # a mirror would not help against a wrong file: only the main URL was asked
        assert server.requests == [("/data/aclImdb_v1.tar.gz", None)]
    message = str(e.value)
    assert wrong.removeprefix("sha256:") in message
    assert hashlib.sha256(archives["aclImdb_v1.tar.gz"]).hexdigest() in message
    assert server.url("/data/aclImdb_v1.tar.gz") in message
    assert not list((tmp_path / ".downloads").iterdir())  # the .part is gone
    assert not (tmp_path / "imdb").exists()


def test_404_names_the_url(tmp_path: Path, archives: dict[str, bytes]) -> None:
    with _serve(archives, not_found=True) as server:
        registry = local_registry(server, archives)
        with pytest.raises(FetchError) as e:
            fetch("amazon_polarity", tmp_path, registry=registry, progress=False)
    url = server.url("/data/amazon_review_polarity_csv.tgz")
    assert f"{url}: HTTP 404" in str(e.value)
    assert "resume" not in e.value.hint
    assert not isinstance(e.value, ChecksumError)


def test_mirror_fallback(tmp_path: Path, archives: dict[str, bytes]) -> None:
    with _serve(archives) as server:
        # main URL answers 404, the mirror has the file
        registry = local_registry(server, archives, url_path="/gone/", mirrors=("/data/",))
        fetch("glove.6B", tmp_path, registry=registry, progress=False, dims=50)
    assert [path for path, _ in server.requests] == ["/gone/glove.6B.zip", "/data/glove.6B.zip"]
    assert (tmp_path / "glove" / "glove.6B.50d.txt.gz").is_file()


def test_mirror_fallback_on_refused_connection(tmp_path: Path, archives: dict[str, bytes]) -> None:
    with socket.socket() as s:  # a port that nothing listens on any more
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    data = archives["glove.6B.zip"]
    dest = tmp_path / "g.zip"
    with _serve(archives) as server:
        dead = f"http://127.0.0.1:{dead_port}/glove.6B.zip"
        mirror = server.url("/data/glove.6B.zip")
        download(dead, dest, sha256(data), progress=False, mirrors=[mirror])
        assert dest.read_bytes() == data
        dest.unlink()
        with pytest.raises(FetchError, match=f"{re.escape(dead)}: cannot connect") as e:
            download(dead, dest, sha256(data), progress=False, timeout=5)
    assert "check your network" in e.value.hint


def test_existing_dest_is_checked(tmp_path: Path, archives: dict[str, bytes]) -> None:
    data = archives["glove.6B.zip"]
    dest = tmp_path / "glove.6B.zip"
    with _serve(archives) as server:
        url = server.url("/data/glove.6B.zip")
        dest.write_bytes(data)
        download(url, dest, sha256(data), progress=False)
        assert server.requests == []  # matching file: no network at all
        dest.write_bytes(b"stale copy")
        download(url, dest, sha256(data), progress=False)
        assert len(server.requests) == 1
    assert dest.read_bytes() == data


def test_malformed_checksum(tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="malformed checksum"):
        download("http://127.0.0.1:9/x", tmp_path / "x", "crc32:1234")


# --- the real registry, without network -------------------------------------------------------


def test_real_registry_is_well_formed() -> None:
    assert sorted(REGISTRY) == ["amazon_polarity", "glove.6B", "imdb"]
    folders = [entry.folder for entry in REGISTRY.values()]
    assert len(set(folders)) == len(folders)
    for name, entry in REGISTRY.items():
        assert entry.name == name
        assert entry.description and entry.citation and entry.licence
        assert entry.homepage.startswith("http")
        assert callable(entry.convert)
        assert entry.outputs and all(out.endswith(".gz") for out in entry.outputs)
        assert entry.outputs_for() == entry.outputs
        for item in entry.downloads:
            assert item.url.startswith("https://")
            assert all(m.startswith("https://") for m in item.mirrors)
            assert item.url.rsplit("/", 1)[1] == item.filename
            algo, _, digest = item.checksum.partition(":")
            assert {"md5": 32, "sha256": 64}[algo] == len(digest)
            assert re.fullmatch(r"[0-9a-f]+", digest)
    assert REGISTRY["imdb"].downloads[0].checksum == (
        "sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"
    )
    assert REGISTRY["glove.6B"].outputs_for(dims=(50, 300)) == (
        "glove.6B.50d.txt.gz",
        "glove.6B.300d.txt.gz",
    )
    assert len(REGISTRY["glove.6B"].outputs) == 4


def test_unknown_name_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(FetchError) as e:
        get_entry("imbd")
    assert "imbd" in e.value.message
    assert "amazon_polarity, glove.6B, imdb" in e.value.hint
    with pytest.raises(FetchError):
        fetch("imbd", tmp_path)
