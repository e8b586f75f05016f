"""Moving what a source run learned into a target model, and pseudo-labels for self-training."""

from __future__ import annotations

from dataclasses import dataclass

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


def adjust_to_prior(proba: np.ndarray, calibrated: np.ndarray, prior: np.ndarray
                    ) -> np.ndarray:
    """Posteriors of a model calibrated to class prior ``calibrated`` as they would be under
    ``prior`` (Bayes: p'(c|x) is proportional to p(c|x) * prior_c / calibrated_c)."""
    scaled = np.asarray(proba, np.float64) * (np.asarray(prior, np.float64)
                                              / np.asarray(calibrated, np.float64))
    return scaled / scaled.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class PriorEstimate:
    prior: np.ndarray        # the estimated target class prior
    adjusted: np.ndarray     # the source's probabilities adjusted to it
    iterations: int
    converged: bool


def em_prior(proba: np.ndarray, calibrated: np.ndarray, *, counts: np.ndarray | None = None,
             tol: float = 1e-6, max_iter: int = 1000) -> PriorEstimate:
    """The target's class prior by EM (Saerens, Latinne & Decaestecker 2002).

    ``proba``: the source model's posteriors on unlabelled target text; ``calibrated``: the
    prior those posteriors are calibrated to (what the source trained on, after its class
    balancing). E-step: adjust every row's posteriors to the current prior; M-step: the new
    prior is their mean. It starts from ``calibrated`` and each step cannot lower the
    likelihood of the unlabelled text. ``counts``: class counts of labelled target rows,
    which join the M-step as rows whose class is known (a MAP estimate that leans on them
    in proportion to their number)."""
    proba = np.clip(np.asarray(proba, np.float64), 1e-12, None)
    calibrated = np.asarray(calibrated, np.float64)
    n_classes = proba.shape[1]
    known = (np.zeros(n_classes) if counts is None
             else np.asarray(counts, np.float64).reshape(n_classes))
    total = len(proba) + known.sum()
    if total == 0:
        raise TlcError("no text to estimate the target's class prior on",
                       hint="give unlabelled target text with --unlabelled")
    prior = calibrated / calibrated.sum()
    adjusted = adjust_to_prior(proba, calibrated, prior)
    for iteration in range(1, max_iter + 1):
        new = (adjusted.sum(axis=0) + known) / total
        # A class no row supports would end at 0, and log 0 later: keep it possible.
        new = np.maximum(new, 1e-6)
        new /= new.sum()
        adjusted = adjust_to_prior(proba, calibrated, new)
        done = np.abs(new - prior).max() < tol
        prior = new
        if done:
            return PriorEstimate(prior, adjusted, iteration, True)
    return PriorEstimate(prior, adjusted, max_iter, False)


def training_prior(y: np.ndarray, weights: np.ndarray | None, balance: str,
                   n_classes: int) -> np.ndarray:
    """The class prior a model trained on labels ``y`` (loss weights ``weights``) is
    calibrated to: each class's share of the loss. ``weight`` scales every class to the same
    total and ``undersample`` draws the same count of each, so both leave each class its
    rows' mean weight (uniform when the weights are equal); ``none`` leaves the sums."""
    y = np.asarray(y, np.int64)
    w = np.ones(len(y)) if weights is None else np.asarray(weights, np.float64)
    sums = np.bincount(y, weights=w, minlength=n_classes)
    if balance == "none":
        mass = sums
    else:
        counts = np.bincount(y, minlength=n_classes)
        mass = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0)
    if mass.sum() <= 0:
        return np.full(n_classes, 1.0 / n_classes)
    return mass / mass.sum()


def pseudo_labels(proba: np.ndarray, fraction: float, prior: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Rows and labels of the most confident predictions, each class's count in proportion
    to ``prior`` (None: the same number for every class).

    The counts are fixed in advance, not taken from the predictions: a source that leans
    to one class on the target would feed that lean back into training. They are the
    largest set in proportion to ``prior`` that every class can fill from its predictions,
    times ``fraction`` (with equal shares: ``fraction`` of the rarest predicted class). Give
    ``proba`` adjusted to ``prior`` (:func:`adjust_to_prior`), so that both the predicted
    class and the confidence ranking take the prior into account."""
    n_classes = proba.shape[1]
    prior = (np.full(n_classes, 1.0 / n_classes) if prior is None
             else np.asarray(prior, np.float64))
    pred = proba.argmax(axis=1)
    confidence = proba.max(axis=1)
    predicted = np.bincount(pred, minlength=n_classes)
    if (predicted == 0).any():
        raise TlcError(
            "the source model predicts only some classes on the unlabelled text "
            f"({int((predicted > 0).sum())} of {n_classes}), so pseudo-labels would teach "
            "one class",
            hint="check that the unlabelled text is from the target task")
    scale = min(predicted[c] / prior[c] for c in range(n_classes))
    # (the small epsilon keeps fraction * share exact where it is an integer in theory)
    per_class = np.floor(fraction * prior * scale + 1e-9).astype(np.int64)
    per_class = np.minimum(per_class, predicted)
    if per_class.min() < 1:
        raise TlcError("too little unlabelled text for self-training"
                       + ("" if np.allclose(prior, prior[0]) else
                          f" (the rarest class's estimated share is {prior.min():.2%})"),
                       hint="add text with self_training.unlabelled or raise the fraction")
    rows = []
    for c in range(n_classes):
        members = np.flatnonzero(pred == c)
        order = np.argsort(-confidence[members], kind="stable")
        rows.append(members[order[:per_class[c]]])
    rows = np.sort(np.concatenate(rows))
    return rows, pred[rows]


def calibrated_prior(run) -> tuple[np.ndarray, str]:
    """The class prior a finished run's outputs are calibrated to, and how that is known:
    its run.json's record, or, for runs made before it was recorded, its class balancing
    ('weight' and 'undersample' train to a uniform prior; 'none' to its labelled rows'
    shares, which its stratified validation split repeats)."""
    n = len(run.labels)
    record = run.info.get("calibration")
    if isinstance(record, dict):
        prior = record.get("prior")
        if (isinstance(prior, list) and len(prior) == n
                and all(isinstance(p, (int, float)) and p > 0 for p in prior)):
            prior = np.asarray(prior, np.float64)
            return prior / prior.sum(), str(record.get("by", "run.json"))
    balance = run.config.training.balance
    uniform = np.full(n, 1.0 / n)
    if balance != "none":
        return uniform, f"training.balance={balance}"
    per_class = (run.info.get("validation") or {}).get("per_class") or []
    support = np.array([row.get("support", 0) if isinstance(row, dict) else 0
                        for row in per_class], np.float64)
    if len(support) == n and (support > 0).all():
        return support / support.sum(), "training.balance=none (validation rows' shares)"
    return uniform, "training.balance=none, shares unrecorded (assumed uniform)"


@dataclass
class SelfTrainingPlan:
    rows: np.ndarray          # rows of the unlabelled text that get pseudo-labels
    labels: np.ndarray        # ...and their labels
    prior: np.ndarray | None  # the target prior the finished model is calibrated to
    record: dict              # what run.json keeps


def plan_self_training(proba: np.ndarray, mode: str, fraction: float,
                       source_prior: np.ndarray, labelled: np.ndarray,
                       names: list[str]) -> SelfTrainingPlan:
    """Which unlabelled rows get which pseudo-labels, by ``mode`` (``self_training.prior``):
    'em' estimates the target prior (:func:`em_prior`, the labelled class counts
    ``labelled`` joining it), 'labels' takes ``labelled``'s shares, 'balanced' takes equal
    counts of the source's own predictions and calibrates nothing."""
    def shares(values) -> dict[str, float]:
        return {name: round(float(v), 6) for name, v in zip(names, values, strict=True)}

    labelled = np.asarray(labelled, np.int64)
    given = mode if isinstance(mode, dict) else None
    record: dict = {"prior_mode": "given" if given else mode,
                    "unlabelled_rows": int(len(proba)), "source_prior": shares(source_prior)}
    if given is not None and set(given) != set(names):
        raise TlcError(f"self_training.prior gives shares for {', '.join(sorted(given))}, but "
                       f"the run's labels are {', '.join(names)}",
                       hint="give one share per label, or use --set self_training.prior=em")
    if mode == "balanced":
        rows, pseudo = pseudo_labels(proba, fraction)
        prior = None
    else:
        if given is not None:
            prior = np.array([float(given[n]) for n in names])
            prior = prior / prior.sum()
            adjusted = adjust_to_prior(proba, source_prior, prior)
        elif mode == "labels":
            if labelled.sum() == 0:
                raise TlcError("self_training.prior='labels' needs labelled training rows, "
                               "and the label budget leaves none",
                               hint="use --set self_training.prior=em (estimated from the "
                               "unlabelled text), or give labels with --labels N")
            if (labelled == 0).any():
                raise TlcError("self_training.prior='labels': the labelled training rows "
                               "hold no example of "
                               + ", ".join(n for n, c in zip(names, labelled, strict=True)
                                           if c == 0),
                               hint="use --set self_training.prior=em, or a larger budget")
            prior = labelled / labelled.sum()
            adjusted = adjust_to_prior(proba, source_prior, prior)
        else:
            estimate = em_prior(proba, source_prior, counts=labelled)
            prior, adjusted = estimate.prior, estimate.adjusted
            record.update(em_iterations=estimate.iterations, em_converged=estimate.converged,
                          labelled_rows_in_estimate=int(labelled.sum()))
        record["target_prior"] = shares(prior)
        rows, pseudo = pseudo_labels(adjusted, fraction, prior)
    record["pseudo_labels"] = {name: int((pseudo == c).sum()) for c, name in enumerate(names)}
    record["source_predicted"] = {name: int(c) for name, c in zip(
        names, np.bincount(proba.argmax(1), minlength=len(names)), strict=True)}
    return SelfTrainingPlan(rows, pseudo, prior, record)


def prior_offset(proba: np.ndarray, prior: np.ndarray, *, tol: float = 1e-6,
                 max_iter: int = 5000) -> tuple[np.ndarray, int]:
    """The logit offset that calibrates a model to ``prior`` on text it has scored
    (``proba``): the mean of its offset posteriors equals ``prior``, as a calibrated model's
    mean posterior equals its class prior. Returns (offset, iterations).

    Each step adds log(prior / mean posterior); a class's mean moves at most as fast as
    its offset (d log mean / d offset = the mean of q(1 - q) over the mean of q, below 1),
    so the steps never overshoot and the mean approaches ``prior`` from one side."""
    logits = np.log(np.clip(np.asarray(proba, np.float64), 1e-12, None))
    prior = np.asarray(prior, np.float64)
    offset = np.zeros(proba.shape[1])
    for iteration in range(1, max_iter + 1):
        z = logits + offset
        q = np.exp(z - z.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        step = np.log(prior / np.maximum(q.mean(axis=0), 1e-300))
        offset = offset + step - step.mean()
        if np.abs(step).max() < tol:
            return offset, iteration
    return offset, max_iter


def shift_output(model, offset: np.ndarray) -> None:
    """Add ``offset`` to the logits of a softmax head (the output layer's bias): it
    multiplies every posterior by exp(offset) before the softmax normalises it, so offset
    log(prior / calibrated) is :func:`adjust_to_prior` done by the network itself (and the
    exported file carries it)."""
    layer = model.get_layer("output")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel, (bias + np.asarray(offset)).astype(bias.dtype)])
