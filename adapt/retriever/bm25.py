"""BM25 (bm25s, Lucene's scoring, English stop words and Snowball stemming when PyStemmer is
installed): the lexical baseline every domain-adaptation table starts from, and the lexical half
of hybrid search (adapt/retriever/hybrid.py).

A `BM25Index` is stored as a folder: bm25s's own files, the document ids, and a record of every
setting another engine needs to score the same way (k1, b, tokenisation, stemmer, stop words)
with a digest of the corpus it holds, so it is never searched against another corpus.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
from bm25s.stopwords import STOPWORDS_EN

from adapt.data import Document, Query, Ranking, corpus_digest
from adapt.errors import AdaptError
from adapt.io import read_json, replace_dir, write_json

SETTINGS = {"k1": 0.9, "b": 0.4}  # Anserini's defaults, which BEIR's BM25 rows use
METHOD = "lucene"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # bm25s's (scikit-learn's): words of two or more characters
STEMMER = "snowball-english"  # PyStemmer's "english" (Porter2)
RECORD = "adapt-bm25.json"


def _stemmer(name: str | None = STEMMER):
    """PyStemmer's English stemmer, or None without PyStemmer (bm25s works without it; the
    record says which was used, and an index stored with one refuses to load without it)."""
    if name is None:
        return None
    try:
        import Stemmer
    except ImportError:
        return None
    return Stemmer.Stemmer(name.removeprefix("snowball-"))


def _tokens(texts: list[str], stemmer) -> list[list[str]]:
    return bm25s.tokenize(
        texts,
        lower=True,
        token_pattern=TOKEN_PATTERN,
        stopwords=list(STOPWORDS_EN),
        stemmer=stemmer,
        return_ids=False,
        show_progress=False,
    )


@dataclass
class BM25Index:
    doc_ids: list[str]
    retriever: bm25s.BM25
    settings: dict  # what another engine must carry to score alike (see `build`)

    @classmethod
    def build(cls, docs: list[Document]) -> "BM25Index":
        if not docs:
            raise AdaptError("cannot index an empty corpus")
        stemmer = _stemmer()
        retriever = bm25s.BM25(method=METHOD, **SETTINGS)
        retriever.index(_tokens([d.full_text for d in docs], stemmer), show_progress=False)
        settings = {
            **SETTINGS,
            "method": METHOD,
            "lowercase": True,
            "token_pattern": TOKEN_PATTERN,
            "stemmer": STEMMER if stemmer else None,
            "stopwords": list(STOPWORDS_EN),
            "text": "title. text (the title and a full stop before the text, when there is one)",
            "bm25s": bm25s.__version__,
            "corpus_digest": corpus_digest(docs),
            "documents": len(docs),
        }
        return cls([d.id for d in docs], retriever, settings)

    def _query_tokens(self, texts: list[str]) -> list[list[str]]:
        return _tokens(texts, _stemmer(self.settings["stemmer"]))

    def score_all(self, queries: list[Query]) -> np.ndarray:
        """[n queries, n docs] BM25 scores of every document, in `doc_ids` order: a query
        sharing no term with the corpus (all stop words, say) scores 0 everywhere."""
        out = np.zeros((len(queries), len(self.doc_ids)), dtype=np.float32)
        for row, tokens in enumerate(self._query_tokens([q.text for q in queries])):
            if tokens:  # bm25s cannot score an empty token list
                out[row] = self.retriever.get_scores(tokens)
        return out

    def search(self, queries: list[Query], k: int) -> Ranking:
        """Top-k per query, best first."""
        k = min(k, len(self.doc_ids))
        tokens = self._query_tokens([q.text for q in queries])
        rows, scores = self.retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
        return {
            q.id: [(self.doc_ids[int(i)], float(s)) for i, s in zip(row_i, row_s)]
            for q, row_i, row_s in zip(queries, rows, scores)
        }

    def save(self, path: Path) -> None:
        """A folder (bm25s's files, doc_ids.json, the record), written beside and renamed into
        place."""
        tmp = path.parent / f".{path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.retriever.save(str(tmp), show_progress=False)
        (tmp / "doc_ids.json").write_text(json.dumps(self.doc_ids))
        write_json(tmp / RECORD, self.settings)
        replace_dir(tmp, path)

    @classmethod
    def load(cls, path: Path, docs: list[Document] | None = None) -> "BM25Index":
        """The index at `path`; given `docs`, refused unless it holds exactly that corpus."""
        if not (path / RECORD).is_file():
            raise AdaptError(f"{path}: no BM25 index (build it with `adapt index`)")
        settings = read_json(path / RECORD)
        if docs is not None and corpus_digest(docs) != settings["corpus_digest"]:
            raise AdaptError(
                f"{path} holds another corpus ({settings['documents']} documents, digest "
                f"{settings['corpus_digest']}) than the one given ({len(docs)} documents, "
                f"{corpus_digest(docs)}): its scores would rank other texts. Build it again."
            )
        if settings["stemmer"] and _stemmer(settings["stemmer"]) is None:
            raise AdaptError(f"{path} was built with stemming: pip install PyStemmer to search it")
        retriever = bm25s.BM25.load(str(path), show_progress=False)
        return cls(read_json(path / "doc_ids.json"), retriever, settings)


def bm25_scores(
    docs: list[Document], queries: dict[str, Query], wanted: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """BM25 scores of chosen documents: query id -> doc id -> score, for `wanted` query id ->
    doc ids (a target's candidates). A document sharing no term with the query scores 0."""
    index = BM25Index.build(docs)
    row = {d: i for i, d in enumerate(index.doc_ids)}
    qids = list(wanted)
    scores = index.score_all([queries[q] for q in qids])
    return {qid: {d: float(s[row[d]]) for d in wanted[qid]} for qid, s in zip(qids, scores)}


def bm25_search(docs: list[Document], queries: list[Query], k: int) -> tuple[Ranking, dict]:
    """Top-k per query, and the settings used (for the report)."""
    index = BM25Index.build(docs)
    return index.search(queries, k), {**SETTINGS, "stemmer": index.settings["stemmer"]}
