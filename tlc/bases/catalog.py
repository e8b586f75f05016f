"""What ``tlc base build`` knows about each base it can build: the recipe that trains its
source run, the data sets it is scored on, and what its model card says about the data.

The figures are never written here: the build measures them and writes them into the
card. What is written here is what no measurement can give: where the data came from and on
what terms (from the data folder's README, ``shared/data/README.md``).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from ..errors import TlcError
from ..train.recipes import GLOVE, SOURCE, SOURCE_DATA, assignments


@dataclass(frozen=True)
class Collection:
    """One part of a training file, known by the prefix of its ``category`` column."""

    what: str
    reference: str | None       # the publication to cite; None where there is none
    published: bool = True      # False: not a published data set at all


@dataclass(frozen=True)
class BaseRecipe:
    name: str
    summary: str
    data: str                   # data.train of the source run (a data set of the data folder)
    vectors: str                # --init-vectors, relative to the data folder
    args: list[str]             # the recipe's `tlc train --set` arguments
    tests: tuple[str, ...]      # NAME:SPLIT the card reports accuracy on
    label_meaning: dict[str, str]
    data_description: str
    collections: dict[str, Collection]
    other_sources: list[str]    # the tokenizer's extra text and the word vectors, with terms
    terms: list[str]
    category_column: str = "category"

    def settings(self) -> list[str]:
        """The ``section.key=value`` list `tlc train --data DATA --set ...` would apply."""
        return [f"data.train={json.dumps(self.data)}", *assignments(self.args)]

    def train_command(self, data_dir: str = "DATA_DIR", out: str | None = None) -> str:
        """The `tlc train` command line that trains the source run (into ``out``)."""
        return shlex.join(["tlc", "train", "--data", self.data, "--init-vectors",
                           f"{data_dir}/{self.vectors}", *self.args, "--data-dir", data_dir,
                           "--out", out or f"runs/base-{self.name}"])


_AMAZON = {
    "mdsd": Collection(
        "Multi-Domain Sentiment Dataset (Amazon reviews of the 2000s: books, dvd, electronics, "
        "kitchen, apparel, automotive, baby, beauty)",
        "John Blitzer, Mark Dredze, Fernando Pereira. 2007. Biographies, Bollywood, "
        "Boom-boxes and Blenders: Domain Adaptation for Sentiment Classification. ACL 2007"),
    "amazon2014": Collection(
        "2014 McAuley Amazon product data, 5-core files (Musical Instruments, Digital Music, "
        "Kindle Store; excerpts)",
        "Julian McAuley, Christopher Targett, Qinfeng Shi, Anton van den Hengel. 2015. "
        "Image-based Recommendations on Styles and Substitutes. SIGIR 2015; Ruining He, "
        "Julian McAuley. 2016. Ups and Downs. WWW 2016"),
    "amazon2018": Collection(
        "2018 Amazon Review Data, 5-core files AMAZON_FASHION and All_Beauty",
        "Jianmo Ni, Jiacheng Li, Julian McAuley. 2019. Justifying Recommendations using "
        "Distantly-Labeled Reviews and Fine-Grained Aspects. EMNLP 2019"),
    "finefoods": Collection(
        "SNAP Amazon Fine Food Reviews (the first 7,336 rows of Reviews.csv)",
        "Julian McAuley, Jure Leskovec. 2013. From Amateurs to Connoisseurs: Modeling the "
        "Evolution of User Expertise through Online Reviews. WWW 2013"),
    "uw_amazon_baby": Collection(
        "amazon_baby.csv: baby-product reviews used as teaching data in the University of "
        "Washington / Coursera Machine Learning specialization; its origin is not documented",
        None),
    "kaggle_alexa": Collection(
        "Kaggle \"Amazon Alexa Reviews\" (amazon_alexa.tsv, reviews of Echo devices, 2018)", None),
    "promptcloud": Collection(
        "Kaggle \"Amazon Reviews: Unlocked Mobile Phones\" (an excerpt; published by PromptCloud "
        "as far as known, not verified)", None),
    "scrape2023": Collection(
        "NOT a published data set: reviews of 21 electronics products scraped from amazon.com "
        "(2017-2023) by the owner of the GitHub repository pai-pai/amazon-reviews-classification "
        "with their own scraper", None, published=False),
}

CATALOG: dict[str, BaseRecipe] = {
    "reviews-en": BaseRecipe(
        name="reviews-en",
        summary="English product-review sentiment (negative / positive): the tokenizer and "
        "network of the seed table's Amazon source model, for transfer to other review and "
        "opinion text",
        data=SOURCE_DATA,
        vectors=GLOVE,
        args=SOURCE,
        tests=("amazon:test", "imdb:test"),
        label_meaning={"0": "negative (1-2 stars)", "1": "positive (4-5 stars)"},
        data_description=(
            "The `amazon` collection of the tlc data folder (shared/data/README.md, section 3): "
            "English Amazon product reviews with star ratings, assembled from smaller public "
            "copies of several Amazon review collections and labelled as Zhang et al. (2015) "
            "built Amazon Review Polarity (1-2 stars negative, 4-5 positive, 3 dropped; text = "
            "title + \": \" + body). It is NOT Zhang et al.'s 3.6-million-review Amazon Review "
            "Polarity set, which was not available."),
        collections=_AMAZON,
        other_sources=[
            "The tokenizer also read the 50,000 unlabelled "
            "reviews of the IMDB Large Movie Review Dataset (imdb:unsup, no labels used): "
            "Andrew L. Maas et al. 2011. Learning Word Vectors for Sentiment Analysis. ACL-HLT "
            "2011; its README asks that this paper be cited.",
            "The embeddings started from GloVe 6B 50d (Jeffrey Pennington, Richard Socher, "
            "Christopher D. Manning. 2014. GloVe: Global Vectors for Word Representation. "
            "EMNLP 2014), released under the Open Data Commons Public Domain Dedication and "
            "License (PDDL) 1.0.",
        ],
        terms=[
            "The review collections are research data sets, published with the papers listed "
            "above, which ask to be cited; the data folder's README records no licence for "
            "them beyond that, and the review texts remain their authors' (posted on "
            "amazon.com and imdb.com under those sites' terms).",
            "Three collections (uw_amazon_baby, kaggle_alexa, promptcloud) come with no "
            "publication to cite; their origin is as described above.",
            "One collection, scrape2023, is not a published data set: its reviews were "
            "scraped from amazon.com by a GitHub user. The base's weights learned from it "
            "too. Where only published research data may be used, rebuild the base from a "
            "data folder without those rows (the `category` column's `scrape2023:` prefix).",
            "Check these terms before using the base, or models transferred from it, "
            "commercially.",
        ],
    ),
}


def recipe_of(name: str) -> BaseRecipe:
    if name not in CATALOG:
        raise TlcError(f"tlc knows no base called {name!r}",
                       hint=f"the bases `tlc base build` can build are: {', '.join(CATALOG)}")
    return CATALOG[name]
