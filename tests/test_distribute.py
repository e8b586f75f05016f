"""Multi-device training through keras.distribution under JAX, on 2 CPU devices.

The run happens in a fresh interpreter (tests/distributed_run.py): XLA_FLAGS must be set
before JAX starts, and KERAS_BACKEND before Keras is imported. Without jax (the `jax` extra)
the test skips, except when TLC_REQUIRE_JAX=1 (set by .ci/run), where that is a failure.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlc.errors import TlcError

ROOT = Path(__file__).resolve().parent.parent


def test_two_devices_train_as_one_and_resume(tmp_path):
    if importlib.util.find_spec("jax") is None:
        if os.environ.get("TLC_REQUIRE_JAX") == "1":
            pytest.fail("TLC_REQUIRE_JAX=1 but jax is not installed (pip install \".[jax]\")")
        pytest.skip('jax is not installed (pip install ".[jax]")')
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    r = subprocess.run([sys.executable, str(ROOT / "tests" / "distributed_run.py"),
                        str(tmp_path)], capture_output=True, text=True, env=env, timeout=900)
    lines = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert r.returncode == 0 and lines, r.stdout[-3000:] + r.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT "):])
    assert result["jax_devices"] == 2
    two, one = result["two"], result["one"]
    assert two["distribution"] == {"backend": "jax", "devices": 2, "device_kind": "cpu",
                                   "processes": 1, "strategy": "DataParallel",
                                   "global_batch": 32, "per_device_batch": 16}
    assert one["distribution"]["devices"] == 1 and one["distribution"]["strategy"] is None
    # interrupted in epoch 2, resumed there: every epoch once
    assert result["interrupted_after"] == 1 and two["epochs"] == [1, 2, 3]
    # the same global batches: epoch 1 (before the interruption) is the same arithmetic up
    # to the order of the sums, and both runs learn the task to the same accuracy
    assert two["loss"][0] == pytest.approx(one["loss"][0], rel=1e-4)
    assert min(two["accuracy"], one["accuracy"]) > 0.6          # chance is 0.5
    assert abs(two["accuracy"] - one["accuracy"]) <= 0.05       # 200 test rows
    assert "this host has 2 cpu devices" in result["three"]
    assert "does not split over 2 devices" in result["odd"]


def test_devices_need_the_jax_backend(model):  # (the model fixture has started Keras)
    from tlc.train import import_keras
    from tlc.train.distribute import place

    if import_keras().backend.backend() == "jax":
        pytest.skip("this session runs under JAX")
    with pytest.raises(TlcError, match="needs the JAX backend") as info:
        place(2, 64)
    assert "KERAS_BACKEND=jax" in info.value.hint
    assert place(None, 64).to_dict()["devices"] == 1
