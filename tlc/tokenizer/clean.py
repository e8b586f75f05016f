"""Text clean-up: an ordered table of regex rewrites, identical in Python and in the ONNX graph.

ONNX mapping: every row of :data:`CLEANUP_RULES` becomes one ``StringRegexReplace`` node
(onnxruntime-extensions, RE2 ``GlobalReplace``, ``global_replace=1``) with the pattern and the
replacement as string constants, chained in table order. Python applies the same rows with
``re.sub`` in the same order, so both sides produce the same string.

For that to hold, each pattern must mean the same thing to Python ``re`` and to RE2:

* no look-around and no backreferences (RE2 has neither);
* no ``\\s``/``\\w``/``\\d``: Python's are Unicode-aware, RE2's are ASCII, so spell out ASCII
  classes such as ``[ \\t\\n\\r]`` and ``[A-Za-z]``;
* ``(?i)`` only on ASCII literals whose case folding both engines agree on;
* no pattern may match the empty string (the engines advance differently after empty matches);
* replacements are plain text without ``\\`` (a backslash is an escape in both rewrite
  syntaxes, but not the same one).

Deliberately absent: lower-casing (the sentencepiece model's ``nmt_nfkc_cf`` normaliser does
NFKC + case folding, inside the model proto, so the graph op folds identically) and whitespace
collapsing (sentencepiece collapses runs of whitespace itself).
"""

from __future__ import annotations

import re

_WS = "[ \\t\\n\\r]"

CLEANUP_RULES: tuple[tuple[str, str], ...] = (
    # <br />, <br>, <BR/>, <br / >: a paragraph break ends a sentence even when the writer put no
    # full stop, so it becomes a free-standing "." that the id-level splitter (grid.py) sees.
    (f"(?i)<br{_WS}*/?{_WS}*>", " . "),
    # Any other tag (<i>, </i>, <SPOILER>, <span class="x">): a letter or "/" right after "<",
    # no "<" or ">" inside, at most 100 characters, so "a <3 b" and "x < y > z" survive.
    ("</?[A-Za-z][^<>]{0,100}>", " "),
    # Entities. They run after the tag rule, so an escaped "&lt;i&gt;" stays visible as text.
    ("&(?:quot|#34|#034);", '"'),
    ("&(?:#39|#039|apos);", "'"),
    ("&(?:lt|#60|#060);", "<"),
    ("&(?:gt|#62|#062);", ">"),
    ("&(?:nbsp|#160);", " "),
    # Last, so "&amp;quot;" decodes one level only, to the literal text "&quot;".
    ("&(?:amp|#38|#038);", "&"),
)

_COMPILED = tuple((re.compile(pattern), replacement) for pattern, replacement in CLEANUP_RULES)


def clean(text: str) -> str:
    """Apply :data:`CLEANUP_RULES` in order (global replace), exactly as the ONNX graph will."""
    for pattern, replacement in _COMPILED:
        text = pattern.sub(replacement, text)
    return text
