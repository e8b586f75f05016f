"""Getting data in: readers, the canonical data-set layout, the public registry, label budgets.

Nothing here imports TensorFlow or sentencepiece: the runtime's ``tlc predict`` reads its
input through the same readers.
"""

from tlc.data.budget import stratified_subset, validation_split
from tlc.data.dataset import (
    SPLITS,
    Dataset,
    default_data_dir,
    open_dataset,
    parse_source,
    resolve_data_dir,
)
from tlc.data.examples import Examples, iter_examples, load_examples
from tlc.data.labels import LabelSet
from tlc.data.readers import FORMATS, Record, detect_format, read_records

__all__ = [
    "FORMATS",
    "SPLITS",
    "Dataset",
    "Examples",
    "LabelSet",
    "Record",
    "default_data_dir",
    "detect_format",
    "iter_examples",
    "load_examples",
    "open_dataset",
    "parse_source",
    "read_records",
    "resolve_data_dir",
    "stratified_subset",
    "validation_split",
]
