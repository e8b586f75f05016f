"""tlc: small, fast text classifiers from few labels, by transfer learning.

Data flows one way: ``tlc.data`` (readers, registry, label budgets) ->
``tlc.tokenizer`` (clean-up, sentencepiece, document grid) -> model -> export -> runtime.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # TextClassifier is imported on first use, so `import tlc` (and the runtime, which
    # needs no TensorFlow) stays light: tlc.api itself imports only numpy until fit.
    if name == "TextClassifier":
        from .api import TextClassifier

        return TextClassifier
    raise AttributeError(f"module 'tlc' has no attribute {name!r}")


__all__ = ["TextClassifier", "__version__"]
