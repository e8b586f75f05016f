"""Moving what a source run learned into a target model, and pseudo-labels for self-training."""

from __future__ import annotations

import numpy as np

from ..errors import TlcError
from .model import BODY_LAYERS, HEAD_LAYERS


def _layer(model, name: str):
    try:
        return model.get_layer(name)
    except ValueError:
        return None


def transfer_weights(target, source, *, reuse_head: bool) -> list[str]:
    """Copy the tokenizer-facing body (embedding, word and sentence convolutions) and, when
    the label sets match, the head, layer by layer by name. Returns the layers copied."""
    copied = []
    for name in BODY_LAYERS + (HEAD_LAYERS if reuse_head else ()):
        src, dst = _layer(source, name), _layer(target, name)
        if src is None and dst is None:
            continue  # e.g. no hidden layer in either model
        if src is None or dst is None:
            raise TlcError(f"layer {name!r} exists in only one of the source and target models",
                           hint="keep the source run's model settings (model.hidden_units)")
        src_w, dst_w = src.get_weights(), dst.get_weights()
        for a, b in zip(src_w, dst_w, strict=True):
            if a.shape != b.shape:
                raise TlcError(
                    f"layer {name!r} has shape {a.shape} in the source run but {b.shape} here",
                    hint="a transfer run keeps the source's model sizes; drop the --set "
                    "model.* overrides that change them",
                )
        dst.set_weights(src_w)
        copied.append(name)
    return copied


def pseudo_labels(proba: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of the most confident predictions, the same number for every class.

    Equal counts matter: a source trained on 86% positive reviews leans positive on the target,
    and taking the top of each class by count would feed that lean back into training."""
    pred = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    classes = np.unique(pred)
    if len(classes) < proba.shape[1]:
        raise TlcError(
            "the source model predicts only some classes on the unlabelled text "
            f"({len(classes)} of {proba.shape[1]}), so pseudo-labels would teach one class",
            hint="check that the unlabelled text is from the target task",
        )
    per_class = int(fraction * min(int((pred == c).sum()) for c in classes))
    if per_class < 1:
        raise TlcError("too little unlabelled text for self-training",
                       hint="add text with self_training.unlabelled or raise the fraction")
    rows = []
    for c in classes:
        members = np.flatnonzero(pred == c)
        order = np.argsort(-confidence[members], kind="stable")
        rows.append(members[order[:per_class]])
    rows = np.sort(np.concatenate(rows))
    return rows, pred[rows]
