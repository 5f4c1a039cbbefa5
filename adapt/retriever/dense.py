"""Single-vector retrieval: a sentence-transformers-style bi-encoder (mean of the token states,
L2-normalised), searched with faiss.

It is both the baseline the ColBERT student is compared with and a student of its own (the
paper's DPR experiment): `student.kind = "dense"` trains it with the same losses. Checkpoints are
saved in sentence-transformers' layout, so `SentenceTransformer(path)` loads an adapted model.
"""

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from adapt import hub
from adapt.data import Document, Query, Ranking
from adapt.device import autocast
from adapt.errors import AdaptError
from adapt.io import read_json, replace_dir, write_json

if TYPE_CHECKING:
    from rich.progress import Progress

# Cosine similarities live in [-1, 1]; the softmax and sigmoid targets of L_KD and L_pair need
# logits on a wider scale. 20 is sentence-transformers' scale for the same reason.
SCORE_SCALE = 20.0
METADATA = "adapt-dense.json"


class DenseEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, tokenizer, maxlen: int = 256) -> None:
        super().__init__()
        self.encoder, self.tokenizer, self.maxlen = encoder, tokenizer, maxlen
        self.is_fresh = False  # no head to fit: mean pooling has no parameters

    @classmethod
    def load(cls, ref: str, maxlen: int = 256) -> "DenseEncoder":
        location = hub.resolve(ref, "student")
        try:
            encoder = AutoModel.from_pretrained(location)
            tokenizer = AutoTokenizer.from_pretrained(location)
        except (OSError, ValueError) as err:
            raise AdaptError(f"{ref}: not a loadable encoder ({err})") from None
        metadata = Path(location) / METADATA
        if metadata.is_file():
            maxlen = read_json(metadata).get("maxlen", maxlen)
        return cls(encoder.eval(), tokenizer, maxlen)

    def encode(self, texts: list[str], maxlen: int | None = None) -> torch.Tensor:
        """[n, dim] unit vectors: the mean of the unpadded token states (all-MiniLM's pooling)."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=maxlen or self.maxlen,
            return_tensors="pt",
        ).to(self.encoder.device)
        states = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
        return nn.functional.normalize(pooled, dim=-1)

    def score_groups(
        self,
        queries: list[str],
        docs: list[str],
        width: int,
        doc_maxlen: int,
        in_batch: bool = False,
    ) -> torch.Tensor:
        """[b, width] scaled cosine scores of each query against its own `width` documents;
        `in_batch`: [b, b x width], against every document of the batch."""
        q = self.encode(queries)
        d = self.encode(docs, doc_maxlen)
        with torch.autocast(q.device.type, enabled=False):  # cosines in fp32, as in search
            if in_batch:
                return SCORE_SCALE * q.float() @ d.float().T
            return SCORE_SCALE * torch.einsum(
                "bd,bnd->bn", q.float(), d.float().view(len(queries), width, -1)
            )

    def save(
        self, path: Path, extra_metadata: dict | None = None, location: Path | None = None
    ) -> None:
        """sentence-transformers' layout: the encoder, mean pooling, normalisation."""
        del location  # nothing in this layout names its own folder
        path.mkdir(parents=True, exist_ok=True)
        self.encoder.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        modules = ["Transformer", "Pooling", "Normalize"]
        folders = ["", "1_Pooling", "2_Normalize"]
        write_json(
            path / "modules.json",
            [
                {"idx": i, "name": str(i), "path": p, "type": f"sentence_transformers.models.{m}"}
                for i, (m, p) in enumerate(zip(modules, folders))
            ],
        )
        write_json(path / "sentence_bert_config.json", {"max_seq_length": self.maxlen})
        (path / "2_Normalize").mkdir(exist_ok=True)
        write_json(
            path / "1_Pooling" / "config.json",
            {
                "word_embedding_dimension": self.encoder.config.hidden_size,
                "pooling_mode_mean_tokens": True,
            },
        )
        write_json(path / METADATA, {"maxlen": self.maxlen, **(extra_metadata or {})})


@torch.no_grad()
def _encode_all(encoder: DenseEncoder, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """[n, dim] unit vectors, encoded in length-sorted batches (little padding)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = torch.empty(len(texts), encoder.encoder.config.hidden_size)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        out[rows] = encoder.encode([texts[i] for i in rows]).float().cpu()
    return out


def exact_search(
    model: str, maxlen: int, docs: list[Document], queries: list[Query], k: int
) -> Ranking:
    """The start's encoder as it ships, searched exhaustively with one matrix product: the
    bi-encoder baseline, which needs no faiss index."""
    from adapt.device import resolve

    encoder = DenseEncoder.load(model, maxlen).to(resolve("auto"))
    matrix = _encode_all(encoder, [d.full_text for d in docs])
    top = (_encode_all(encoder, [q.text for q in queries]) @ matrix.T).topk(min(k, len(docs)))
    return {
        q.id: [(docs[i].id, float(v)) for v, i in zip(values.tolist(), rows.tolist())]
        for q, values, rows in zip(queries, top.values, top.indices)
    }


@torch.no_grad()
def biencoder_scores(
    model: str,
    maxlen: int,
    queries: dict[str, Query],
    docs: dict[str, Document],
    wanted: dict[str, list[str]],
    batch_size: int = 32,
) -> dict[str, dict[str, float]]:
    """Cosine scores of `model` used as it ships (mean pooling) for chosen candidates: query id
    -> doc id -> score, for `wanted` query id -> doc ids (a distillation target's signal)."""
    from adapt.device import resolve

    encoder = DenseEncoder.load(model, maxlen).to(resolve("auto"))
    ids = sorted({d for group in wanted.values() for d in group})
    vectors = dict(zip(ids, _encode_all(encoder, [docs[d].full_text for d in ids], batch_size)))
    qids = list(wanted)
    encoded = _encode_all(encoder, [queries[q].text for q in qids], batch_size)
    return {
        qid: {d: float(vector @ vectors[d]) for d in wanted[qid]}
        for qid, vector in zip(qids, encoded)
    }


def _faiss():
    try:
        import faiss
    except ImportError:
        raise AdaptError(
            "the dense index needs faiss: pip install faiss-cpu (or faiss-gpu)"
        ) from None
    return faiss


@dataclass
class DenseIndex:
    """One vector per document in a faiss flat inner-product index (exact cosine search)."""

    doc_ids: list[str]
    index: object  # faiss.IndexFlatIP

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: DenseEncoder,
        docs: list[Document],
        maxlen: int,
        batch_size: int = 32,
        progress: "Progress | None" = None,
    ) -> "DenseIndex":
        if not docs:
            raise AdaptError("cannot index an empty corpus")
        faiss = _faiss()
        order = sorted(range(len(docs)), key=lambda i: len(docs[i].full_text))
        task = progress.add_task("encoding corpus (dense)", total=len(docs)) if progress else None
        matrix = np.empty((len(docs), model.encoder.config.hidden_size), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with autocast(model):
                vectors = model.encode([docs[i].full_text for i in rows], maxlen)
            matrix[rows] = vectors.float().cpu()  # faiss searches on the CPU
            if progress is not None:
                progress.advance(task, len(rows))
        index = faiss.IndexFlatIP(matrix.shape[1])
        index.add(matrix)
        return cls([d.id for d in docs], index)

    @torch.no_grad()
    def search(
        self,
        model: DenseEncoder,
        queries: list[Query],
        k: int,
        batch_size: int = 32,
        progress: "Progress | None" = None,
    ) -> Ranking:
        k = min(k, len(self.doc_ids))
        results: Ranking = {}
        task = progress.add_task("searching (dense)", total=len(queries)) if progress else None
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            with autocast(model):
                encoded = model.encode([q.text for q in batch])
            vectors = encoded.float().cpu().numpy()
            scores, rows = self.index.search(vectors, k)
            for query, values, indices in zip(batch, scores, rows):
                results[query.id] = [
                    (self.doc_ids[i], float(v)) for v, i in zip(values, indices) if i >= 0
                ]
            if progress is not None:
                progress.advance(task, len(batch))
        return results

    def save(self, path: Path) -> None:
        """A folder (faiss index + document ids), written beside and renamed into place."""
        tmp = path.parent / f".{path.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _faiss().write_index(self.index, str(tmp / "index.faiss"))
        (tmp / "doc_ids.json").write_text(json.dumps(self.doc_ids))
        replace_dir(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "DenseIndex":
        return cls(read_json(path / "doc_ids.json"), _faiss().read_index(str(path / "index.faiss")))
