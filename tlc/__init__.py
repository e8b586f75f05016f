"""tlc: small, fast text classifiers from few labels, by transfer learning.

Data flows one way: ``tlc.data`` (readers, registry, label budgets) ->
``tlc.tokenizer`` (clean-up, sentencepiece, document grid) -> model -> export -> runtime.
"""

__version__ = "0.1.0"
