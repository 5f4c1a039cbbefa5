"""PLAID index through colbert-ai: centroids plus 2-bit residuals, for corpora too large to keep
every token embedding in memory (exact MaxSim keeps 256 bytes per token in fp16; PLAID about 40).

colbert-ai builds the index in-process from the checkpoint folder (its encoder gives the same
embeddings as adapt's, see tests/test_plaid.py). Search encodes queries with adapt's encoder and
hands them to colbert-ai's scorer, so the checkpoint is loaded once. The index is built in a
temporary folder and renamed into place: a killed build leaves no half index behind.
"""

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from adapt.data import Document, Query, Ranking
from adapt.device import autocast
from adapt.errors import AdaptError
from adapt.io import read_json, replace_dir, write_json
from adapt.retriever import colbert_ai
from adapt.retriever.colbert import METADATA, ColBERT

if TYPE_CHECKING:
    from rich.progress import Progress

DOC_IDS = "doc_ids.json"
LOG = "colbert-ai.log"


def _search_settings(k: int) -> dict[str, Any]:
    """colbert-ai's own defaults for its Searcher: probe more cells and keep more candidate
    documents as k grows."""
    if k <= 10:
        return {"ncells": 1, "centroid_score_threshold": 0.5, "ndocs": 256}
    if k <= 100:
        return {"ncells": 2, "centroid_score_threshold": 0.45, "ndocs": 1024}
    return {"ncells": 4, "centroid_score_threshold": 0.4, "ndocs": max(4 * k, 4096)}


@dataclass
class PlaidIndex:
    path: Path
    doc_ids: list[str]
    _scorer: Any = field(default=None, repr=False)

    @classmethod
    def build(
        cls,
        checkpoint: Path,
        docs: list[Document],
        path: Path,
        maxlen: int,
        batch_size: int = 32,
        nbits: int = 2,
        progress: "Progress | None" = None,
    ) -> "PlaidIndex":
        if not docs:
            raise AdaptError("cannot index an empty corpus")
        if not read_json(checkpoint / METADATA).get("markers", True):
            raise AdaptError(
                f"{checkpoint}: PLAID encodes documents through colbert-ai, which always adds "
                "the [D] marker, and this student was built without markers; use the exact "
                "index, or start with student.markers = 'on'"
            )
        colbert = colbert_ai.load()
        tmp = path.parent / f".{path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        task = progress.add_task("PLAID index (colbert-ai)", total=None) if progress else None
        settings = colbert_ai.config(
            checkpoint.resolve(),
            doc_maxlen=maxlen,
            nbits=nbits,
            index_bsize=batch_size,
        )
        with colbert_ai.log_to(path.parent / LOG), colbert_ai.run_context(tmp.parent):
            indexer = colbert.Indexer(str(checkpoint.resolve()), config=settings, verbose=0)
            try:
                indexer.index(tmp.name, [d.full_text for d in docs], "force_silent_overwrite")
            except RuntimeError as err:
                shutil.rmtree(tmp, ignore_errors=True)
                if "Number of training points" not in str(err):
                    raise
                raise AdaptError(
                    f"{len(docs)} documents are too few for PLAID: colbert-ai's k-means wants "
                    "more token embeddings than centroids; use the exact index"
                ) from None
        write_json(tmp / DOC_IDS, [d.id for d in docs])
        replace_dir(tmp, path)
        if progress is not None:
            progress.update(task, total=1, completed=1)
        return cls(path, [d.id for d in docs])

    @classmethod
    def load(cls, path: Path) -> "PlaidIndex":
        if not (path / DOC_IDS).is_file():
            raise AdaptError(f"{path}: not a PLAID index built by adapt (no {DOC_IDS})")
        return cls(path, read_json(path / DOC_IDS))

    def _ranker(self):
        if self._scorer is None:
            colbert = colbert_ai.load()
            with colbert_ai.log_to(self.path.parent / LOG):
                colbert_ai.build_extensions()
                self._scorer = colbert.IndexScorer(str(self.path), use_gpu=False)
        return self._scorer

    @torch.no_grad()
    def search(
        self,
        model: ColBERT,
        queries: list[Query],
        k: int,
        batch_size: int = 32,
        progress: "Progress | None" = None,
    ) -> Ranking:
        ranker = self._ranker()
        k = min(k, len(self.doc_ids))
        settings = colbert_ai.load().ColBERTConfig.load_from_index(str(self.path))
        settings.configure(**_search_settings(k))
        results: Ranking = {}
        task = progress.add_task("searching (PLAID)", total=len(queries)) if progress else None
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            with autocast(model):
                encoded = model.encode_queries([q.text for q in batch])
            encoded = encoded.float().cpu()  # colbert-ai's scorer runs on the CPU (use_gpu=False)
            for i, query in enumerate(batch):
                pids, scores = ranker.rank(settings, encoded[i : i + 1])
                results[query.id] = [(self.doc_ids[p], float(s)) for p, s in zip(pids, scores)][:k]
            if progress is not None:
                progress.advance(task, len(batch))
        return results
