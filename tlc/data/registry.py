"""The public data sets ``tlc fetch`` knows: where to download them and how to convert them.

Every entry pins a published checksum, so a download is verified before anything is converted,
and names the canonical files its converter writes (see :mod:`tlc.data.convert`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tlc.data.convert import convert_amazon_polarity, convert_glove, convert_imdb, glove_outputs
from tlc.errors import FetchError

Converter = Callable[..., list[Path]]


@dataclass(frozen=True)
class Download:
    """One file to download: ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``."""

    url: str
    filename: str
    checksum: str
    size: int | None = None  # bytes; only used for the progress bar when the server sends none
    mirrors: tuple[str, ...] = ()  # tried in order when ``url`` cannot be reached


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    folder: str  # sub-folder of the data dir that the canonical files are written to
    description: str
    homepage: str
    citation: str
    licence: str
    downloads: tuple[Download, ...]
    # (downloaded_paths, out_dir, **options) -> the files written, in out_dir
    convert: Converter
    outputs: tuple[str, ...]  # canonical file names written with the default options
    options: tuple[str, ...] = ()  # keyword options ``convert`` accepts
    # (**options) -> the outputs for those options; None when they never change
    select_outputs: Callable[..., tuple[str, ...]] | None = None

    def outputs_for(self, **options: object) -> tuple[str, ...]:
        """The file names ``convert`` writes with these options; rejects unknown options early,
        before a long download is started for nothing."""
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            accepted = ", ".join(self.options) if self.options else "none"
            raise FetchError(
                f"data set '{self.name}' has no option {', '.join(unknown)}",
                hint=f"options it accepts: {accepted}",
            )
        if self.select_outputs is None:
            return self.outputs
        return self.select_outputs(**options)



REGISTRY: dict[str, DatasetEntry] = {
    "imdb": DatasetEntry(
        name="imdb",
        folder="imdb",
        description=(
            "Large Movie Review Dataset v1.0 (aclImdb): 50,000 labelled IMDB movie reviews "
            "(25,000 train / 25,000 test, balanced positive/negative) and 50,000 unlabelled "
            "ones, for binary sentiment classification."
        ),
        homepage="http://ai.stanford.edu/~amaas/data/sentiment/",
        citation=(
            "Andrew L. Maas, Raymond E. Daly, Peter T. Pham, Dan Huang, Andrew Y. Ng and "
            "Christopher Potts. 2011. Learning Word Vectors for Sentiment Analysis. "
            "In Proceedings of ACL-HLT 2011, pages 142-150."
        ),
        licence="Released by Stanford for research use; cite the paper (the data set's README "
        "asks for it).",
        downloads=(
            Download(
                url="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz",
                filename="aclImdb_v1.tar.gz",
                # md5 of the same file: 7c2ac02c03563afcf9b574c7e56c153a
                checksum="sha256:c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe",
                size=84_125_825,
            ),
        ),
        convert=convert_imdb,
        outputs=("train.csv.gz", "test.csv.gz", "unsup.csv.gz"),
    ),
    "amazon_polarity": DatasetEntry(
        name="amazon_polarity",
        folder="amazon_polarity",
        description=(
            "Amazon Review Polarity (Zhang, Zhao & LeCun 2015): 3,600,000 train / 400,000 test "
            "Amazon product reviews, balanced; 1-2 stars -> negative, 4-5 stars -> positive. "
            "Built from the McAuley & Leskovec (2013) Amazon reviews. Downloaded from the "
            "fast.ai S3 mirror (amazon_review_polarity_csv.tgz, md5 "
            "ee221fbfc3bf7d49dd7dee8064b2404c). The original Google Drive archive "
            "amazon_review_polarity_csv.tar.gz (as used by torchtext) has md5 "
            "fe39f8b653cada45afd5792e0f0e8f9b; its content is the same CSV files."
        ),
        homepage="https://arxiv.org/abs/1509.01626",
        citation=(
            "Xiang Zhang, Junbo Zhao and Yann LeCun. 2015. Character-level Convolutional "
            "Networks for Text Classification. In Advances in Neural Information Processing "
            "Systems 28 (NIPS 2015). Reviews from: Julian McAuley and Jure Leskovec. 2013. "
            "Hidden Factors and Hidden Topics: Understanding Rating Dimensions with Review "
            "Text. In Proceedings of RecSys 2013."
        ),
        licence="For research use; the underlying review texts are Amazon's.",
        downloads=(
            Download(
                url="https://s3.amazonaws.com/fast-ai-nlp/amazon_review_polarity_csv.tgz",
                filename="amazon_review_polarity_csv.tgz",
                checksum="md5:ee221fbfc3bf7d49dd7dee8064b2404c",
            ),
        ),
        convert=convert_amazon_polarity,
        outputs=("train.csv.gz", "test.csv.gz"),
    ),
    "glove.6B": DatasetEntry(
        name="glove.6B",
        folder="glove",
        description=(
            "GloVe 6B pretrained word vectors (Wikipedia 2014 + Gigaword 5, 6B tokens, "
            "400,000 uncased words) in 50, 100, 200 and 300 dimensions. Option dims picks "
            "which files are kept (default: all four)."
        ),
        homepage="https://nlp.stanford.edu/projects/glove/",
        citation=(
            "Jeffrey Pennington, Richard Socher and Christopher D. Manning. 2014. GloVe: "
            "Global Vectors for Word Representation. In Proceedings of EMNLP 2014, "
            "pages 1532-1543."
        ),
        licence="Open Data Commons Public Domain Dedication and License (PDDL) 1.0.",
        downloads=(
            Download(
                url="https://nlp.stanford.edu/data/glove.6B.zip",
                filename="glove.6B.zip",
                checksum="md5:056ea991adb4740ac6bf1b6d9b50408b",
                size=862_182_613,
                mirrors=("https://downloads.cs.stanford.edu/nlp/data/glove.6B.zip",),
            ),
        ),
        convert=convert_glove,
        outputs=glove_outputs((50, 100, 200, 300)),
        options=("dims",),
        select_outputs=glove_outputs,
    ),
}


def get_entry(name: str, registry: Mapping[str, DatasetEntry] | None = None) -> DatasetEntry:
    """The entry called ``name``; a :class:`FetchError` listing the known names otherwise."""
    registry = REGISTRY if registry is None else registry
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise FetchError(
            f"unknown data set '{name}'",
            hint=f"pick one of: {known}",
        ) from None
