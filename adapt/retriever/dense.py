"""Single-vector retrieval: a sentence-transformers-style bi-encoder (mean of the token states,
L2-normalised), searched exactly by inner product.

It is the baseline the ColBERT student is compared with, built on the same offline encoder.
Exact search is a matrix product in blocks; faiss is not needed at the corpus sizes benchmarked.
"""

from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import AutoModel, AutoTokenizer

from adapt import hub
from adapt.data import Document, Query
from adapt.errors import AdaptError
from adapt.retriever.index import Ranking

if TYPE_CHECKING:
    from rich.progress import Progress


class DenseEncoder(nn.Module):
    def __init__(self, encoder: nn.Module, tokenizer, maxlen: int = 256) -> None:
        super().__init__()
        self.encoder, self.tokenizer, self.maxlen = encoder, tokenizer, maxlen

    @classmethod
    def load(cls, ref: str, maxlen: int = 256) -> "DenseEncoder":
        location = hub.resolve(ref, "student")
        try:
            encoder = AutoModel.from_pretrained(location)
            tokenizer = AutoTokenizer.from_pretrained(location)
        except (OSError, ValueError) as err:
            raise AdaptError(f"{ref}: not a loadable encoder ({err})") from None
        return cls(encoder.eval(), tokenizer, maxlen)

    def encode(self, texts: list[str], maxlen: int | None = None) -> torch.Tensor:
        """[n, dim] unit vectors: the mean of the unpadded token states (all-MiniLM's pooling)."""
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=maxlen or self.maxlen,
            return_tensors="pt",
        )
        states = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)
        return nn.functional.normalize(pooled, dim=-1)


@torch.no_grad()
def dense_search(
    model: DenseEncoder,
    docs: list[Document],
    queries: list[Query],
    k: int,
    batch_size: int = 32,
    progress: "Progress | None" = None,
) -> Ranking:
    if not docs:
        raise AdaptError("cannot index an empty corpus")
    order = sorted(range(len(docs)), key=lambda i: len(docs[i].full_text))
    task = progress.add_task("encoding corpus (bi-encoder)", total=len(docs)) if progress else None
    matrix = torch.empty(len(docs), model.encoder.config.hidden_size)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        matrix[rows] = model.encode([docs[i].full_text for i in rows])
        if progress is not None:
            progress.advance(task, len(rows))
    k = min(k, len(docs))
    results: Ranking = {}
    for start in range(0, len(queries), batch_size):
        batch = queries[start : start + batch_size]
        top = (model.encode([q.text for q in batch]) @ matrix.T).topk(k, dim=1)
        for query, values, indices in zip(batch, top.values, top.indices):
            results[query.id] = [(docs[i].id, float(v)) for v, i in zip(values, indices)]
    return results
