"""What a text must be before it reaches an onnxruntime string tensor: the one place that says.

onnxruntime hands string tensors to the graph as C strings, so a NUL character ends the text
there: ``"A wonderful film\\x00. Terrible, awful"`` would score as ``"A wonderful film"``, and a
text starting with NUL as an empty one. A str holding a lone surrogate (half of a UTF-16 pair,
e.g. from a JSON ``"\\ud800"`` escape or bytes decoded with ``surrogateescape``) cannot be
encoded as UTF-8 at all, and onnxruntime raises. So every text tlc gives a graph -- training
(the tokenizer's encoder graph), export validation and scoring (:class:`tlc.runtime.Classifier`)
-- goes through :func:`model_text` first, and all three read the same string: NUL becomes a
space (a separator, like the other control characters the tokenizer treats as whitespace) and
a lone surrogate becomes U+FFFD, the character invalid UTF-8 bytes decode to.

The file readers never let a lone surrogate through: they report such a row as bad (see
:mod:`tlc.data.readers`), like invalid UTF-8. This module imports nothing but the standard
library, so the runtime can use it without the training extra.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def find_surrogate(text: str) -> int:
    """Index of the first lone surrogate in ``text``, or -1."""
    m = _SURROGATE.search(text)
    return m.start() if m else -1


def replace_surrogates(text: str) -> str:
    """Each lone surrogate -> U+FFFD (a valid pair never occurs in a Python str)."""
    return _SURROGATE.sub("\ufffd", text)


def model_text(text: str) -> str:
    """``text`` as every tlc graph reads it: NUL -> space, lone surrogates -> U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", " ")
    # isascii() is a C-speed flag check: most texts never need the regex scan.
    if not text.isascii() and _SURROGATE.search(text):
        text = replace_surrogates(text)
    return text
