"""Exact MaxSim index: every document's token embeddings in fp16, searched exhaustively.

Documents are encoded in length-sorted batches (little padding) and stored grouped by length, so
search pads each group only to its own longest document. Search holds one group's scores at a
time; `max_block_elements` bounds that work buffer regardless of corpus size.

The store stays in host memory, also when the student runs on a GPU: each block moves to the
queries' device as it is scored, so GPU memory holds one block, not the corpus (about 25 GB at
10^6 passages), and is left to training. The price is one host-to-device copy of the store per
query batch, which bench/gpu_throughput.py's search rate includes.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from adapt.data import Document, Query, Ranking
from adapt.device import autocast
from adapt.errors import AdaptError
from adapt.retriever.colbert import ColBERT, maxsim

if TYPE_CHECKING:  # rich is only needed by callers that show progress
    from rich.progress import Progress


@dataclass
class ExactIndex:
    doc_ids: list[str]
    groups: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]  # (row ids, fp16 emb, mask)

    @classmethod
    @torch.no_grad()
    def build(
        cls,
        model: ColBERT,
        docs: list[Document],
        maxlen: int,
        batch_size: int = 32,
        progress: "Progress | None" = None,
    ) -> "ExactIndex":
        if not docs:
            raise AdaptError("cannot index an empty corpus")
        # Sort by character length: a cheap proxy for token length that keeps batches uniform.
        order = sorted(range(len(docs)), key=lambda i: len(docs[i].full_text))
        task = progress.add_task("encoding corpus", total=len(docs)) if progress else None
        groups = []
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            with autocast(model):
                embeddings, mask = model.encode_docs([docs[i].full_text for i in rows], maxlen)
            groups.append((torch.tensor(rows), embeddings.half().cpu(), mask.cpu()))
            if progress is not None:
                progress.advance(task, len(rows))
        return cls([d.id for d in docs], groups)

    @torch.no_grad()
    def search(
        self,
        model: ColBERT,
        queries: list[Query],
        k: int,
        batch_size: int = 32,
        max_block_elements: int = 1 << 26,
        progress: "Progress | None" = None,
    ) -> Ranking:
        k = min(k, len(self.doc_ids))
        results: Ranking = {}
        task = progress.add_task("searching", total=len(queries)) if progress else None
        for start in range(0, len(queries), batch_size):
            batch = queries[start : start + batch_size]
            with autocast(model):
                encoded = model.encode_queries([q.text for q in batch])
            encoded = encoded.float()  # MaxSim in fp32 whatever the encoder ran at
            top = self.score(encoded, max_block_elements).topk(k, dim=1)
            for query, values, indices in zip(batch, top.values, top.indices):
                results[query.id] = [
                    (self.doc_ids[i], float(v)) for v, i in zip(values.tolist(), indices.tolist())
                ]
            if progress is not None:
                progress.advance(task, len(batch))
        return results

    def score(self, encoded: torch.Tensor, max_block_elements: int = 1 << 26) -> torch.Tensor:
        """[n queries, n docs] MaxSim of `encoded` queries against every document, computed on
        the queries' device, to which each block of the host-memory store moves in turn."""
        device = encoded.device
        scores = torch.full((len(encoded), len(self.doc_ids)), float("-inf"), device=device)
        for rows, embeddings, mask in self.groups:
            per_doc = encoded.shape[0] * encoded.shape[1] * embeddings.shape[1]
            step = max(1, max_block_elements // per_doc)
            for lo in range(0, len(rows), step):
                block = embeddings[lo : lo + step].to(device, encoded.dtype)
                block_scores = maxsim(encoded, block, mask[lo : lo + step].to(device))
                scores[:, rows[lo : lo + step].to(device)] = block_scores
        return scores

    def save(self, path: Path) -> None:
        """One torch file, written atomically; loaded back with weights_only=True."""
        from adapt.io import atomic_open

        payload = {
            "doc_ids": self.doc_ids,
            "groups": [{"rows": r, "embeddings": e, "mask": m} for r, e, m in self.groups],
        }
        with atomic_open(path, "wb") as handle:
            torch.save(payload, handle)

    @classmethod
    def load(cls, path: Path) -> "ExactIndex":
        """Into host memory, whatever device wrote it: search moves blocks (module docstring)."""
        payload = torch.load(path, map_location="cpu", weights_only=True)
        groups = [(g["rows"], g["embeddings"], g["mask"]) for g in payload["groups"]]
        return cls(payload["doc_ids"], groups)
