"""BM25 (bm25s, Lucene's scoring, English stop words and Snowball stemming when PyStemmer is
installed): the lexical baseline every domain-adaptation table starts from."""

import bm25s

from adapt.data import Document, Query, Ranking
from adapt.errors import AdaptError


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # bm25s works without it; the report records which was used
        return None
    return Stemmer.Stemmer("english")


SETTINGS = {"k1": 0.9, "b": 0.4}


def _index(docs: list[Document], stemmer) -> bm25s.BM25:
    if not docs:
        raise AdaptError("cannot index an empty corpus")
    retriever = bm25s.BM25(method="lucene", **SETTINGS)
    retriever.index(
        bm25s.tokenize(
            [d.full_text for d in docs], stopwords="en", stemmer=stemmer, show_progress=False
        ),
        show_progress=False,
    )
    return retriever


def bm25_scores(
    docs: list[Document], queries: dict[str, Query], wanted: dict[str, list[str]]
) -> dict[str, dict[str, float]]:
    """BM25 scores of chosen documents: query id -> doc id -> score, for `wanted` query id ->
    doc ids (a target's candidates). A document sharing no term with the query scores 0."""
    stemmer = _stemmer()
    retriever = _index(docs, stemmer)
    row = {d.id: i for i, d in enumerate(docs)}
    found = {}
    for qid, ids in wanted.items():
        tokens = bm25s.tokenize(
            [queries[qid].text],
            stopwords="en",
            stemmer=stemmer,
            return_ids=False,
            show_progress=False,
        )[0]
        scores = retriever.get_scores(tokens)
        found[qid] = {d: float(scores[row[d]]) for d in ids}
    return found


def bm25_search(docs: list[Document], queries: list[Query], k: int) -> tuple[Ranking, dict]:
    """Top-k per query, and the settings used (for the report)."""
    stemmer = _stemmer()
    retriever = _index(docs, stemmer)
    tokens = bm25s.tokenize(
        [q.text for q in queries], stopwords="en", stemmer=stemmer, show_progress=False
    )
    k = min(k, len(docs))
    indices, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    ranking = {
        q.id: [(docs[int(i)].id, float(s)) for i, s in zip(row_i, row_s)]
        for q, row_i, row_s in zip(queries, indices, scores)
    }
    return ranking, {**SETTINGS, "stemmer": "snowball-english" if stemmer else None}
