"""examples/c: a C program on onnxruntime's C API scores exactly as tlc.runtime does, and so
does the C++ snippet of docs/scoring.md.

examples/c/build.sh is run once per session: it takes the onnxruntime library from the PyPI
wheel of the onnxruntime version installed here (a program linked against one version refuses
another) and the headers and extensions library from npm, then compiles with the system
compiler. Without a C compiler, npm or Linux x86_64 the tests skip, except when
TLC_REQUIRE_C=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tlc.runtime import Classifier
from tlc.text import model_text

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
EXAMPLE = ROOT / "examples" / "c"

# Lines that reach the C program as bytes and tlc.runtime as the str they decode to
# (bytes.decode("utf-8", "replace"), which the program follows for invalid UTF-8).
SPECIAL: list[bytes] = [
    b"", b" ", b"\t", b"   \t  ", b"\xc2\xa0",                        # empty and blank
    "这部电影非常好看，我很喜欢。".encode(), "映画はとても良かった".encode(),
    "정말 좋은 영화".encode(), "هذا المنتج رائع جدا".encode(),            # CJK, Arabic (RTL)
    "\u200fמוצר מצוין\u200e!".encode(),                                 # Hebrew, RTL marks
    "great 👍👍 😀 👨\u200d👩\u200d👧".encode(),                         # emoji, ZWJ
    "cafe\u0301 na\u0308ive Z\u0335\u0321a\u0334l\u0336g\u0337o".encode(),   # combining
    "\ufeffBOM first".encode(), b"tab\tinside\ttext", b"nul\x00inside",
    b"<br /><br />", b"<b>Great</b> product<br />would buy <i>again</i>&amp; again",
    b"<html><body><p>awful</p></body></html>",
    b"\xff\xfe bad bytes", b"\xe0\x80 overlong", b"\xc0\xaf slash", b"\xed\xa0\x80 surrogate",
    b"cut \xf0\x90\x80", b"\x80\x80\x80", b"ok \xe2\x82",                 # invalid UTF-8
    b"windows line end\r",                                               # '\r' before '\n'
]


def _long_texts(words: list[str]) -> list[bytes]:
    return [
        " ".join(words[i % len(words)] for i in range(40_000)).encode()[:200_000],  # 200 kB
        ("é" * 100_003).encode(),          # truncation counts characters, not bytes
        ("😀" * 99_999 + "ab").encode(),   # cut after the 'a'
        b"x" * 100_000, b"y" * 100_001,
    ]


def _reviews(n: int) -> list[bytes]:
    with gzip.open(FIXTURES / "imdb" / "test.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = [r["text"] for r in csv.DictReader(f)]
    # a line cannot hold a newline: a text that has one is given with spaces instead
    return [" ".join(r.splitlines()).encode() for r in rows[:n]]


def _texts() -> list[bytes]:
    reviews = _reviews(100)
    long = _long_texts(b" ".join(reviews).decode().split())
    texts = SPECIAL + long
    return texts + reviews[: 100 - len(texts)]


def _require(reason: str) -> None:
    if os.environ.get("TLC_REQUIRE_C") == "1":
        pytest.fail(f"TLC_REQUIRE_C=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def c_build():
    if sys.platform != "linux" or platform.machine() != "x86_64":
        _require("examples/c/build.sh is written for Linux x86_64")
    for tool in ("cc", "npm", "tar"):
        if shutil.which(tool) is None:
            _require(f"no `{tool}` on PATH to build examples/c")
    import onnxruntime

    env = {**os.environ, "ORT_VERSION": onnxruntime.__version__, "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(EXAMPLE / "build.sh")], env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, f"examples/c/build.sh failed:\n{proc.stdout}\n{proc.stderr}"
    assert "warning:" not in proc.stderr, proc.stderr     # the compilers' -Wall -Wextra
    return EXAMPLE / "build"


def _parse(out: bytes) -> tuple[list[str], np.ndarray]:
    rows = [line.split("\t") for line in out.decode().split("\n")[:-1]]
    labels = [r[0] for r in rows]
    return labels, np.array([[np.float32(x) for x in r[1:]] for r in rows], dtype=np.float32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype == np.float32 and bool(
        np.array_equal(a.view(np.uint32), b.view(np.uint32)))


def test_c_program_scores_bit_for_bit_as_tlc_runtime(c_build, model, tmp_path):
    texts = _texts()
    assert len(texts) == 100 and all(b"\n" not in t for t in texts)
    strings = [t.decode("utf-8", "replace").removesuffix("\r") for t in texts]
    expected_labels, expected = Classifier.load(model).score(strings)
    stdin = b"\n".join(texts) + b"\n"

    # What the model gets: the str tlc.runtime scores, cut as it cuts (the tiny model reads only
    # 24 tokens, so its probabilities alone could not show where a text was cut).
    echo = subprocess.run([str(c_build / "tlc_score"), "--echo"], input=stdin,
                          capture_output=True, timeout=60)
    assert echo.returncode == 0
    assert echo.stdout.split(b"\n")[:-1] == [model_text(s[:100_000]).encode() for s in strings]

    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("ORT_DISABLE_TELEMETRY", None)   # the program sets it itself
    proc = subprocess.run([str(c_build / "tlc_score"), str(model)], input=stdin,
                          capture_output=True, env=env, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    labels, proba = _parse(proc.stdout)
    assert labels == expected_labels
    assert _same_bits(proba, expected)
    assert not (home / ".cache").exists()            # no telemetry files written

    # One text a run, and the last line without its newline: the same output.
    one = subprocess.run([str(c_build / "tlc_score"), "-b", "1", str(model)],
                         input=stdin[:-1], capture_output=True, timeout=300)
    assert one.returncode == 0 and one.stdout == proc.stdout


def test_c_program_options_and_errors(c_build, model, tmp_path):
    exe = str(c_build / "tlc_score")
    labels = subprocess.run([exe, "--labels", str(model)], capture_output=True, timeout=60)
    assert labels.returncode == 0
    assert json.loads(labels.stdout) == list(Classifier.load(model).labels)

    # -t 0 never cuts, as truncate_chars=None
    text = "fine " * 20_000 + "awful broken"
    out = subprocess.run([exe, "-t", "0", str(model)], input=text.encode(),
                         capture_output=True, timeout=60)
    assert out.returncode == 0
    _, proba = _parse(out.stdout)
    assert _same_bits(proba, Classifier.load(model, truncate_chars=None).predict_proba([text]))
    assert subprocess.run([exe, str(model)], input=b"", capture_output=True,
                          timeout=60).stdout == b""

    # A bare extensions name is not looked up in the current folder; a path is.
    shutil.copy(c_build / "libortextensions.so", tmp_path / "libext.so")
    bare = subprocess.run([exe, "-e", "libext.so", str(model)], input=b"hi\n",
                          capture_output=True, cwd=tmp_path, timeout=60)
    assert bare.returncode == 1 and b"libext.so" in bare.stderr
    dotted = subprocess.run([exe, "-e", "./libext.so", str(model)], input=b"hi\n",
                            capture_output=True, cwd=tmp_path, timeout=60)
    assert dotted.returncode == 0 and dotted.stdout.startswith(b"0\t")

    missing = subprocess.run([exe, str(tmp_path / "nope.onnx")], input=b"hi\n",
                             capture_output=True, timeout=60)
    assert missing.returncode == 1 and b"loading the model" in missing.stderr


def _doc_cpp() -> str:
    """The C++ block of the embedding section (docs/scoring.md)."""
    text = (ROOT / "docs" / "scoring.md").read_text(encoding="utf-8")
    section = text[text.index("**C / C++**"):]
    return section[section.index("```cpp\n") + 7 : section.index("```\n", 7)]


def test_doc_cpp_snippet_compiles_and_scores_as_tlc_runtime(c_build, model, tmp_path):
    if shutil.which("c++") is None:
        _require("no C++ compiler (`c++`) to build docs/scoring.md's C++ snippet")
    program = tmp_path / "snippet.cpp"
    program.write_text('#include <cstdio>\n#include <cstdlib>\n#include <string>\n'
                       '#include "onnxruntime_cxx_api.h"\n\nint main() {\n'
                       + _doc_cpp() +
                       '  std::printf("%s\\t%.9g\\t%.9g\\n", label.c_str(), p[0], p[1]);\n'
                       '}\n', encoding="utf-8")
    build = subprocess.run(["c++", "-std=c++17", "-Wall", "-Wextra", f"-I{c_build / 'include'}",
                            "-o", str(tmp_path / "snippet"), str(program), f"-L{c_build}",
                            "-lonnxruntime", f"-Wl,-rpath,{c_build}"],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0 and "warning:" not in build.stderr, build.stderr
    # It opens "model.onnx" and "./libortextensions.so" in the current folder.
    shutil.copy(model, tmp_path / "model.onnx")
    shutil.copy(c_build / "libortextensions.so", tmp_path / "libortextensions.so")
    out = subprocess.run([str(tmp_path / "snippet")], capture_output=True, cwd=tmp_path,
                         timeout=60)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    labels, proba = _parse(out.stdout)
    expected_labels, expected = Classifier.load(model).score(["A wonderful film."])
    assert labels == expected_labels and _same_bits(proba, expected)
