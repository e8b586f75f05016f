"""Issue 13: tlc deletes or overwrites only what it made, and two tlc processes never share
an output. Every --force is tried on a folder or file holding a user's own things (refused,
nothing touched) and on tlc's own output (replaced); the locks with a real second process.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tiny_model import TINY as TINY_RUN
from typer.testing import CliRunner

from tlc.cli import app
from tlc.errors import TlcError
from tlc.ownership import OutputLock, lock_path
from tlc.train.config import RunConfig
from tlc.train.pipeline import train
from tlc.train.run import load_run
from tlc.train.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
AMAZON = FIXTURES / "amazon"
TINY = [*TINY_RUN, "data.labels=100"]
runner = CliRunner()


def cli(*args) -> object:
    return runner.invoke(app, [str(a) for a in args])


def train_args(out: Path, *extra: str) -> list[str]:
    args = ["train", "--data", str(AMAZON), "--init", "none", "--out", str(out), "-q", *extra]
    for setting in TINY:
        args += ["--set", setting]
    return args


def tiny_config() -> RunConfig:
    return RunConfig().override([*TINY, f"data.train={json.dumps(str(AMAZON))}"])


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes, to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def user_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("my notes, not tlc's\n")
    (folder / "data").mkdir()
    (folder / "data" / "labels.csv").write_text("text,label\nmine,1\n")
    return folder


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the first process ended early ({proc.returncode}): {err[-3000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"timed out waiting for {path}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ownership") / "run"
    train(tiny_config(), out, quiet=True)
    return out


# ------------------------------------------------------------------------- tlc train --out


def test_train_force_never_deletes_a_folder_that_is_not_a_run(tmp_path):
    out = user_folder(tmp_path / "mine")
    before = tree(out)
    r = cli(*train_args(out, "--force"))
    assert r.exit_code == 2, r.output
    assert "holds no tlc run" in r.output and "notes.txt" in r.output and "data/" in r.output
    assert "Traceback" not in r.output
    assert tree(out) == before
    r = cli(*train_args(out))           # without --force: not "an unfinished run", no --resume
    assert r.exit_code == 2 and "holds no tlc run" in r.output
    assert "unfinished" not in r.output and "--resume" not in r.output
    assert tree(out) == before


def test_train_force_refuses_a_run_holding_other_files_then_retrains_it(finished_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished_run, out)
    (out / "notes.txt").write_text("mine")
    (out / "eval").mkdir(exist_ok=True)
    (out / "eval" / "plot.png").write_bytes(b"\x89PNG")
    (out / "eval" / "amazon_test.json").write_text("{}")     # a tlc evaluate report
    before = tree(out)
    r = cli(*train_args(out, "--force"))
    assert r.exit_code == 2, r.output
    assert "--force refused" in r.output and "notes.txt" in r.output
    assert "eval/plot.png" in r.output and "amazon_test.json" not in r.output
    assert "nothing was deleted" in r.output
    assert tree(out) == before

    r = cli(*train_args(out))                     # no --force: it does not suggest --force
    assert r.exit_code == 2 and "finished run is already here" in r.output
    assert "pass --force" not in r.output and "--force would be refused" in r.output

    (out / "notes.txt").unlink()
    (out / "eval" / "plot.png").unlink()
    old = json.loads((out / "run.json").read_text())
    r = cli(*train_args(out, "--force", "--seed", "7"))
    assert r.exit_code == 0, r.output
    assert json.loads((out / "run.json").read_text())["training"] != old["training"]
    assert not (out / "eval").exists()                      # the old run's reports went with it
    assert (out / ".tlc-run").is_file()
    load_run(out).model  # noqa: B018  (loads)


def test_train_into_an_empty_folder_and_a_run_folder_layout(tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    run = train(tiny_config(), out, quiet=True)
    assert sorted(p.name for p in out.iterdir()) == [".tlc-run", "config.json", "model.keras",
                                                     "run.json", "tokenizer"]
    assert json.loads((out / ".tlc-run").read_text())["made_by"] == "tlc train"
    assert run.labels == ["0", "1"]
    assert not lock_path(out).exists()                        # the lock went with the run


def test_a_failed_start_removes_only_what_the_run_wrote(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()                                   # the user's own (empty) folder

    def fails(self, *args, **kwargs):
        (out / "notes.txt").write_text("written while it trained")
        raise RuntimeError("simulated failure in the first epoch")

    monkeypatch.setattr(Trainer, "fit", fails)
    with pytest.raises(RuntimeError, match="simulated"):
        train(tiny_config(), out, quiet=True)
    assert out.is_dir() and sorted(os.listdir(out)) == ["notes.txt"]

    def fails_quietly(self, *args, **kwargs):
        raise RuntimeError("simulated")

    monkeypatch.setattr(Trainer, "fit", fails_quietly)
    with pytest.raises(TlcError, match="holds no tlc run"):
        train(tiny_config(), out, quiet=True)       # not a run any more: refused
    new = tmp_path / "new"
    with pytest.raises(RuntimeError):
        train(tiny_config(), new, quiet=True)
    assert not new.exists()                        # made by this run, holding nothing else
    assert not lock_path(new).exists()


_WAITING_TRAIN = r"""
import os, sys, time
from pathlib import Path
from tlc.train import trainer
real = trainer.Trainer.fit
def fit(self, *args, **kwargs):
    Path(os.environ["READY"]).write_text("")
    while not Path(os.environ["GO"]).exists():
        time.sleep(0.05)
    return real(self, *args, **kwargs)
trainer.Trainer.fit = fit
from tlc.cli import main
main()
"""


def test_two_trains_into_one_folder(tmp_path):
    out = tmp_path / "run"
    ready, go = tmp_path / "ready", tmp_path / "go"
    first = subprocess.Popen([sys.executable, "-c", _WAITING_TRAIN, *train_args(out)],
                             cwd=ROOT, env={**os.environ, "READY": str(ready), "GO": str(go)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(ready, first)                    # the first is training into out
        before = tree(out)
        for extra in ([], ["--force"], ["--resume"]):
            started = time.monotonic()
            r = cli(*train_args(out, *extra))
            assert r.exit_code == 2, r.output
            assert f"another tlc train (pid {first.pid}, started " in r.output, r.output
            assert "is writing this run folder" in r.output and "--resume" not in r.output
            assert time.monotonic() - started < 30   # at once, not after the first finished
        assert tree(out) == before                # the second touched nothing
        go.write_text("")
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert load_run(out).labels == ["0", "1"]
    assert not lock_path(out).exists()


# ----------------------------------------------------------------- bad run folders, messages


def test_init_and_evaluate_name_what_they_were_given(finished_run, tmp_path):
    onnx = tmp_path / "model.onnx"
    onnx.write_bytes(b"\x08\x07")
    r = cli("evaluate", onnx, AMAZON)
    assert r.exit_code == 2 and "is an exported model, not a run folder" in r.output
    assert "the run folder it was exported from" in r.output and "tlc predict" in r.output
    assert "choose another --out" not in r.output

    r = cli(*train_args(tmp_path / "a", "--init", onnx))
    assert r.exit_code == 2 and "give --init the run folder it was" in r.output, r.output
    assert "choose another --out" not in r.output
    notes = tmp_path / "notes.txt"
    notes.write_text("x")
    r = cli(*train_args(tmp_path / "a", "--init", notes))
    assert r.exit_code == 2 and "is a file, not a run folder" in r.output
    assert "give --init" in r.output

    empty = tmp_path / "empty"
    empty.mkdir()
    r = cli(*train_args(tmp_path / "a", "--init", empty))
    assert r.exit_code == 2 and "empty folder" in r.output and "--resume" not in r.output
    r = cli(*train_args(tmp_path / "a", "--init", user_folder(tmp_path / "mine")))
    assert r.exit_code == 2 and "holds no tlc run" in r.output and "--resume" not in r.output
    assert not (tmp_path / "a").exists()


def damage(run: Path, how: str) -> None:
    if how == "run.json truncated":
        (run / "run.json").write_bytes((run / "run.json").read_bytes()[:50])
    elif how == "run.json not JSON":
        (run / "run.json").write_bytes(b"\xff\xfe not json")
    elif how == "run.json a list":
        (run / "run.json").write_text("[1, 2]")
    elif how == "run.json without labels":
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "labels": "01"}))
    elif how == "model.keras missing":
        (run / "model.keras").unlink()
    elif how == "model.keras garbage":
        (run / "model.keras").write_bytes(b"not a zip file")
    elif how == "model.keras truncated":
        (run / "model.keras").write_bytes((run / "model.keras").read_bytes()[:4000])
    elif how == "tokenizer missing":
        shutil.rmtree(run / "tokenizer")
    elif how == "tokenizer.json not JSON":
        (run / "tokenizer" / "tokenizer.json").write_text("{")
    elif how == "config.json missing":
        (run / "config.json").unlink()
    elif how == "config.json not an object":
        (run / "config.json").write_text("[]")


DAMAGES = ["run.json truncated", "run.json not JSON", "run.json a list",
           "run.json without labels", "model.keras missing", "model.keras garbage",
           "model.keras truncated", "tokenizer missing", "tokenizer.json not JSON",
           "config.json missing", "config.json not an object"]


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_run_is_one_clear_message(finished_run, tmp_path, how):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    damage(run, how)
    for args in (["evaluate", run, AMAZON], train_args(tmp_path / "b", "--init", str(run))):
        r = cli(*args)
        assert r.exit_code == 2, (how, r.output, r.exception)
        assert r.output.startswith("error: ") and "Traceback" not in r.output
        assert r.output.count("error:") == 1 and "fix:" in r.output, r.output
        assert "File not found" not in r.output
    # and --force takes it back: a damaged run is still a run
    r = cli(*train_args(run, "--force"))
    assert r.exit_code == 0, r.output


# ------------------------------------------------------------------------------------ locks


def test_output_lock(tmp_path):
    target = tmp_path / "out.csv"
    with OutputLock(target, "tlc predict", "this output"):
        holder = json.loads(lock_path(target).read_text())
        assert holder["pid"] == os.getpid() and holder["command"] == "tlc predict"
        with pytest.raises(TlcError, match=rf"another tlc predict \(pid {os.getpid()}, "
                           r"started .*\) is writing this output") as info:
            OutputLock(target, "tlc predict", "this output").acquire()
        assert "choose another --out" in info.value.hint
    assert not lock_path(target).exists()
    lock_path(target).write_text("left by a killed run")          # stale: nobody holds it
    with OutputLock(target, "tlc predict", "this output"):
        assert json.loads(lock_path(target).read_text())["pid"] == os.getpid()
    assert not lock_path(target).exists()


# --------------------------------------------------------------------------- tlc predict


def reviews_csv(path: Path, n: int = 100, label_column: bool = False) -> Path:
    rows = ["id,text" + (",label" if label_column else "")]
    rows += [f"{i},review {i}: {'great boots' if i % 2 else 'broke at once'}"
             + (f",{i % 2}" if label_column else "") for i in range(n)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["scored.csv", "scored.jsonl", "scored.tsv", "scored.csv.gz"])
def test_predict_force_replaces_only_predict_output(model, tmp_path, name):
    src = reviews_csv(tmp_path / "in.csv", 20)
    out = tmp_path / name
    mine = b"id,name,label\n1,my own table,x\n" if "jsonl" not in name else \
        b'{"id": 1, "label": "mine"}\n'
    out.write_bytes(gzip.compress(mine) if name.endswith(".gz") else mine)
    r = cli("predict", model, src, "-o", out, "--force")
    assert r.exit_code == 2 and "--force refused" in r.output and "not tlc predict output" \
        in r.output, r.output
    assert out.read_bytes().startswith(b"\x1f\x8b") or out.read_bytes() == mine
    r = cli("predict", model, src, "-o", out)
    assert r.exit_code == 2 and "already exists" in r.output and "--force does not" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", name]   # no lock left

    out.unlink()
    for source in (src, reviews_csv(tmp_path / "labelled.csv", 20, label_column=True)):
        assert cli("predict", model, source, "-o", out, "--force").exit_code == 0
        r = cli("predict", model, source, "-o", out)
        assert r.exit_code == 2 and "pass --force to overwrite it" in r.output
        r = cli("predict", model, source, "-o", out, "--force")   # tlc's own: replaced
        assert r.exit_code == 0, r.output
    assert "pred_label" in gzip.decompress(out.read_bytes()).decode() if name.endswith(".gz") \
        else "pred_label" in out.read_text()
    out.write_bytes(b"")                                       # an empty file holds nothing
    assert cli("predict", model, src, "-o", out, "--force").exit_code == 0


_WAITING_PREDICT = r"""
import os, time
from pathlib import Path
from tlc.runtime import Classifier
real, calls = Classifier.score, []
def score(self, texts):
    calls.append(1)
    if len(calls) == 2:                 # the first block is written by now
        Path(os.environ["READY"]).write_text("")
        while not Path(os.environ["GO"]).exists():
            time.sleep(0.05)
    return real(self, texts)
Classifier.score = score
from tlc.runtime import batch
batch.BLOCK_ROWS = 0                    # blocks of batch x threads rows: several in 100 rows
from tlc.cli import main
main()
"""


def test_two_predicts_on_one_output(model, tmp_path):
    src = reviews_csv(tmp_path / "in.csv", 100)
    clean = tmp_path / "clean.csv"
    assert cli("predict", model, src, "-o", clean).exit_code == 0
    out = tmp_path / "out.csv"
    ready, go = tmp_path / "ready", tmp_path / "go"
    args = ["predict", str(model), str(src), "-o", str(out), "--batch-size", "8",
            "--threads", "1", "-q"]
    first = subprocess.Popen([sys.executable, "-c", _WAITING_PREDICT, *args], cwd=ROOT,
                             env={**os.environ, "READY": str(ready), "GO": str(go)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    part = tmp_path / ".out.csv.part"
    try:
        wait_for(ready, first)
        wait_for(tmp_path / ".out.csv.progress.part", first)
        before = tree(tmp_path)
        for extra in ([], ["--force"], ["--resume"]):
            r = cli(*args, *extra)
            assert r.exit_code == 2, r.output
            assert f"another tlc predict (pid {first.pid}, started " in r.output, r.output
            assert "is writing this output" in r.output
            assert "--resume" not in r.output.split("fix:")[1]
        assert tree(tmp_path) == before                 # the first one's files untouched
        go.write_text("")
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert out.read_bytes() == clean.read_bytes()
    assert not part.exists() and not lock_path(out).exists()


# ----------------------------------------------------------------------------- tlc export


def plain_onnx(path: Path) -> Path:
    import onnx
    from onnx import helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", 1, [1])],
                              [helper.make_tensor_value_info("y", 1, [1])])
    onnx.save(helper.make_model(graph), path)
    return path


def test_export_force_replaces_only_a_tlc_export(models, tmp_path):
    run = models[0].parent / "run"
    cases = {"notes.onnx": ("my notes", "not an ONNX model"),
             "other.onnx": (None, "an ONNX model without tlc metadata")}
    for name, (text, seems) in cases.items():
        out = tmp_path / name
        out.write_text(text) if text else plain_onnx(out)
        before = out.read_bytes()
        r = cli("export", run, "--out", out, "--force", "--no-validate")
        assert r.exit_code == 2 and "--force refused" in r.output and seems in r.output, r.output
        r = cli("export", run, "--out", out, "--no-validate")
        assert r.exit_code == 2 and "--force does not replace it" in r.output
        assert out.read_bytes() == before
    out = tmp_path / "model.onnx"
    shutil.copy(models[1], out)                              # tlc's own (the ids export)
    r = cli("export", run, "--out", out, "--no-validate")
    assert r.exit_code == 2 and "pass --force to overwrite it" in r.output
    r = cli("export", run, "--out", out, "--force", "--no-validate")
    assert r.exit_code == 0, r.output
    assert out.read_bytes() != models[1].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx", "notes.onnx",
                                                          "other.onnx"]


# -------------------------------------------------------------------- tlc tokenizer train


def tokenizer_args(out: Path, *extra: str) -> list[str]:
    return ["tokenizer", "train", "--data", str(AMAZON), "--vocab-size", "400",
            "--out", str(out), *extra]


def test_tokenizer_force_replaces_only_a_tlc_tokenizer(tmp_path):
    hf = tmp_path / "hf"                       # another tool's tokenizer: common file names
    hf.mkdir()
    (hf / "tokenizer.json").write_text('{"version": "1.0", "model": {"type": "BPE"}}')
    (hf / "tokenizer.model").write_bytes(b"\x0a\x05other")
    before = tree(hf)
    for extra in ([], ["--force"]):
        r = cli(*tokenizer_args(hf, *extra))
        assert r.exit_code == 2 and "not a tokenizer written by tlc" in r.output, r.output
        assert "tokenizer.json" in r.output and "Traceback" not in r.output
    assert tree(hf) == before

    mine = user_folder(tmp_path / "mine")      # other files, no tokenizer: written beside
    r = cli(*tokenizer_args(mine))
    assert r.exit_code == 0, r.output
    meta = json.loads((mine / "tokenizer.json").read_text())
    r = cli(*tokenizer_args(mine))
    assert r.exit_code == 2 and "pass --force to replace it" in r.output
    r = cli(*tokenizer_args(mine, "--force", "--seed", "3"))   # tlc's own: replaced
    assert r.exit_code == 0, r.output
    assert json.loads((mine / "tokenizer.json").read_text())["config"]["seed"] == 3 != \
        meta["config"]["seed"]
    assert (mine / "notes.txt").read_text() == "my notes, not tlc's\n"
    assert (mine / "data" / "labels.csv").is_file()

    a_file = tmp_path / "tok.txt"
    a_file.write_text("x")
    r = cli(*tokenizer_args(a_file, "--force"))
    assert r.exit_code == 2 and "is a file, not a folder" in r.output, (r.output, r.exception)
    assert a_file.read_text() == "x"


# ---------------------------------------------------------- tlc data subset, tlc evaluate


def test_subset_force_replaces_only_a_label_budget(tmp_path):
    out = tmp_path / "budget.csv"
    out.write_text("my,own\ntable,here\n")
    args = ["data", "subset", str(AMAZON), "--labels", "20", "--out", str(out)]
    r = cli(*args, "--force")
    assert r.exit_code == 2 and "--force refused" in r.output and "row,role" in r.output
    assert out.read_text() == "my,own\ntable,here\n"
    out.unlink()
    assert cli(*args).exit_code == 0
    assert cli(*args, "--seed", "4", "--force").exit_code == 0           # its own: replaced
    gz = tmp_path / "budget.csv.gz"
    assert cli("data", "subset", str(AMAZON), "--labels", "20", "--out", gz).exit_code == 0
    assert cli("data", "subset", str(AMAZON), "--out", gz, "--force").exit_code == 0


def test_evaluate_out_replaces_only_a_report(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    notes = tmp_path / "notes.json"
    notes.write_text('{"my": "notes"}')
    r = cli("evaluate", run, AMAZON, "--out", notes)
    assert r.exit_code == 2 and "is not a tlc evaluate report" in r.output
    assert notes.read_text() == '{"my": "notes"}'
    report = tmp_path / "report.json"
    assert cli("evaluate", run, AMAZON, "--out", report).exit_code == 0
    r = cli("evaluate", run, AMAZON, "--out", report)                   # again: replaced
    assert r.exit_code == 0, r.output
    assert json.loads(report.read_text())["n"] == 100
