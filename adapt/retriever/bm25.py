"""BM25 (bm25s, Lucene's scoring, English stop words and Snowball stemming when PyStemmer is
installed): the lexical baseline every domain-adaptation table starts from."""

import bm25s

from adapt.data import Document, Query
from adapt.errors import AdaptError
from adapt.retriever.index import Ranking


def _stemmer():
    try:
        import Stemmer
    except ImportError:  # bm25s works without it; the report records which was used
        return None
    return Stemmer.Stemmer("english")


def bm25_search(docs: list[Document], queries: list[Query], k: int) -> tuple[Ranking, dict]:
    """Top-k per query, and the settings used (for the report)."""
    if not docs:
        raise AdaptError("cannot index an empty corpus")
    stemmer = _stemmer()
    retriever = bm25s.BM25(method="lucene", k1=0.9, b=0.4)
    retriever.index(
        bm25s.tokenize(
            [d.full_text for d in docs], stopwords="en", stemmer=stemmer, show_progress=False
        ),
        show_progress=False,
    )
    tokens = bm25s.tokenize(
        [q.text for q in queries], stopwords="en", stemmer=stemmer, show_progress=False
    )
    k = min(k, len(docs))
    indices, scores = retriever.retrieve(tokens, k=k, show_progress=False, n_threads=1)
    ranking = {
        q.id: [(docs[int(i)].id, float(s)) for i, s in zip(row_i, row_s)]
        for q, row_i, row_s in zip(queries, indices, scores)
    }
    return ranking, {"k1": 0.9, "b": 0.4, "stemmer": "snowball-english" if stemmer else None}
