"""Training on several devices: Keras' distribution API (``keras.distribution.DataParallel``).

Under the JAX backend (``KERAS_BACKEND=jax``, ``pip install "tlc[jax]"``, or jax with CUDA
for GPUs) ``tlc train`` uses every local accelerator (``--devices N``: the first N). The
model's variables are replicated on every device and each batch is split along its first
axis, so ``training.batch_size`` stays the *global* batch: one optimiser step sees the same
rows whatever the number of devices, and a run on 2 devices follows the one on 1 up to float
rounding. The per-device batch is ``batch_size / devices`` (it must divide); both are stated
when training starts and stored in ``run.json`` under ``distribution``.

Every array handed to a distributed model must split evenly over the devices, so an epoch
trains on a multiple of N rows (up to N - 1 rows of that epoch's shuffled order wait for a
later epoch, which draws its own order) and predictions pad their input with copies of the
last row, cut off again after.

Other backends train on their default device; ``--devices`` above 1 there is an error.
Several hosts: see ``docs/scale-out.md`` (``keras.distribution.initialize``; a recipe, not
tested here).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TlcError

PREDICT_BATCH = 256


@dataclass
class Placement:
    """Where a run trains: the backend, the devices, the batch on each."""

    backend: str
    devices: int
    device_kind: str | None
    processes: int
    global_batch: int
    per_device_batch: int
    distribution: Any = None
    """The ``keras.distribution.DataParallel`` in force, or None (one device)."""

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "devices": self.devices,
                "device_kind": self.device_kind, "processes": self.processes,
                "strategy": "DataParallel" if self.distribution is not None else None,
                "global_batch": self.global_batch, "per_device_batch": self.per_device_batch}

    def describe(self) -> str:
        kind = self.device_kind or "default"
        if self.distribution is None:
            return (f"training on one {kind} device ({self.backend}), batch "
                    f"{self.global_batch}")
        hosts = f" on {self.processes} hosts" if self.processes > 1 else ""
        return (f"training on {self.devices} {kind} devices{hosts} (keras.distribution."
                f"DataParallel, {self.backend}): global batch {self.global_batch}, "
                f"{self.per_device_batch} per device")

    def scope(self):
        """The distribution's scope: models built or loaded inside it live on every device."""
        return self.distribution.scope() if self.distribution is not None \
            else contextlib.nullcontext()

    @property
    def split(self) -> int:
        """How many pieces every array is cut into (1: no constraint)."""
        return self.devices if self.distribution is not None else 1

    def epoch_rows(self, rows: np.ndarray) -> np.ndarray:
        """An epoch's rows, cut to a multiple of the devices."""
        return rows[: len(rows) - len(rows) % self.split] if self.split > 1 else rows

    def predict(self, model, x: np.ndarray) -> np.ndarray:
        """``model.predict`` in batches of 256 (rounded up to a multiple of the devices), the
        input padded to a multiple of the devices."""
        n = self.split
        if n == 1 or len(x) == 0:
            return model.predict(x, batch_size=PREDICT_BATCH, verbose=0)
        pad = -len(x) % n
        if pad:
            x = np.concatenate([x, np.repeat(x[-1:], pad, axis=0)])
        size = -(-PREDICT_BATCH // n) * n
        return model.predict(x, batch_size=size, verbose=0)[: len(x) - pad]


def _multi_host(keras) -> None:
    """``keras.distribution.initialize()`` when the launcher set KERAS_DISTRIBUTION_* (see
    docs/scale-out.md; untested here: one host only)."""
    if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1") or 1) > 1:
        keras.distribution.initialize()


def place(devices: int | None, batch_size: int) -> Placement:
    """The devices a run trains on. ``devices``: None = every local accelerator under JAX
    (the backend's default device elsewhere); N = the first N."""
    from . import import_keras

    keras = import_keras()
    backend = keras.backend.backend()
    if devices is not None and devices < 1:
        raise TlcError(f"--devices must be at least 1, got {devices}")
    if backend != "jax":
        if devices not in (None, 1):
            raise TlcError(f"training on {devices} devices needs the JAX backend (this run "
                           f"uses {backend})",
                           hint='pip install "tlc[jax]" (CPU) or jax[cuda12] (GPU), then run '
                           "with KERAS_BACKEND=jax")
        return Placement(backend, 1, _tf_kind(keras) if backend == "tensorflow" else None, 1,
                         batch_size, batch_size)
    import jax

    _multi_host(keras)
    local = jax.local_devices()
    kind = local[0].platform
    wanted = len(local) if devices is None else devices
    if wanted > len(local):
        raise TlcError(f"--devices {wanted}, but this host has {len(local)} {kind} "
                       f"device{'s' * (len(local) != 1)}",
                       hint=f"pass --devices {len(local)} or fewer (on the CPU, XLA_FLAGS="
                       "--xla_force_host_platform_device_count=N makes N devices)")
    processes = jax.process_count()
    total = wanted * processes
    if total == 1:
        return Placement(backend, 1, kind, 1, batch_size, batch_size)
    if batch_size % total:
        raise TlcError(f"training.batch_size={batch_size} does not split over {total} "
                       "devices", hint=f"use a multiple of {total}, e.g. --set "
                       f"training.batch_size={-(-batch_size // total) * total}, or fewer "
                       "--devices")
    chosen = local[:wanted] if processes == 1 else jax.devices()
    names = [f"{d.platform}:{d.id}" for d in chosen]
    distribution = keras.distribution.DataParallel(devices=names)
    return Placement(backend, total, kind, processes, batch_size, batch_size // total,
                     distribution)


def _tf_kind(keras) -> str:
    try:
        import tensorflow as tf

        return "gpu" if tf.config.list_logical_devices("GPU") else "cpu"
    except Exception:  # TensorFlow without its device list: say nothing wrong
        return "cpu"
