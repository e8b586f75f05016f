"""The Keras network -> ONNX with tf2onnx: ids (N, S, T) in, probabilities (N, C) out."""

from __future__ import annotations

from ..errors import TlcError

IDS = "ids"
PROBABILITIES = "probabilities"
MIN_OPSET, MAX_OPSET = 17, 21  # 17: the tokenizer's ops; 21: what tf2onnx 1.17 targets


def network_to_onnx(model, sentences: int, tokens: int, opset: int = 17):
    """Convert through a ``tf.function`` of the model in inference mode (dropout off)."""
    import tensorflow as tf
    import tf2onnx

    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise TlcError(f"opset {opset} is not supported",
                       hint=f"choose an opset from {MIN_OPSET} to {MAX_OPSET} (default 17)")
    spec = (tf.TensorSpec((None, sentences, tokens), tf.int32, name=IDS),)

    @tf.function(input_signature=spec)
    def infer(ids):
        return {PROBABILITIES: model(ids, training=False)}

    try:
        proto, _ = tf2onnx.convert.from_function(infer, input_signature=spec, opset=opset)
    except Exception as err:  # tf2onnx raises bare exceptions for unconvertible ops
        raise TlcError(f"tf2onnx could not convert the network: {type(err).__name__}: {err}",
                       hint="the model holds a layer or op without an ONNX conversion; "
                       "models built by tlc convert, so check custom changes") from None
    return proto
