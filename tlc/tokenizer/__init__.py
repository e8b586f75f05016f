"""Document preprocessing: clean-up -> sentencepiece ids -> (sentences x tokens) grid.

Every step is chosen so the export can rebuild it inside the ONNX graph bit for bit:
regex rewrites (``StringRegexReplace``), the sentencepiece model (``SentencepieceTokenizer``)
and id lookups plus cumulative sums for the grid (``Gather``, ``CumSum``, ``ScatterND``).
"""

from tlc.tokenizer.clean import CLEANUP_RULES, clean
from tlc.tokenizer.grid import grid_from_flat, starts_word_table, terminal_table, to_grid
from tlc.tokenizer.spm import Tokenizer, TokenizerConfig

__all__ = [
    "CLEANUP_RULES",
    "Tokenizer",
    "TokenizerConfig",
    "clean",
    "grid_from_flat",
    "starts_word_table",
    "terminal_table",
    "to_grid",
]
