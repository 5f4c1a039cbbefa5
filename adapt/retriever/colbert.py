"""ColBERT in plain torch: an encoder, a linear head to `dim`, L2-normalised token embeddings.

With its two conventions on, tokenisation follows colbert-ai exactly (so checkpoints move both
ways with equal scores): `[CLS] [unused0] query [SEP]` padded with [MASK] to `query_maxlen` (query
augmentation: the masks are kept as query embeddings but not attended to), `[CLS] [unused1]
document [SEP]` with punctuation tokens dropped from the document embeddings.

Both conventions are learned: an encoder never trained with them (a fresh head on a plain
encoder) is hurt by them, most by augmentation, whose ~20 [MASK] embeddings add noise terms to
every MaxSim sum (docs/benchmarks.md, "The start"). So they are settings of the model, recorded in
the checkpoint's metadata: without augmentation a query is its own tokens, and pad positions are
zero vectors that add nothing to MaxSim. Checkpoints are saved in colbert-ai's layout: the encoder
under its base-model prefix plus `linear.weight` in `model.safetensors`, and `artifact.metadata`.
"""

import json
import string
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel

from adapt import hub
from adapt.errors import AdaptError

QUERY_MARKER = "[unused0]"
DOC_MARKER = "[unused1]"
METADATA = "artifact.metadata"
# The conventions a fresh head on a plain encoder gets (chosen by measurement, docs/benchmarks.md);
# checkpoints with a trained head keep colbert-ai's (both on) unless their metadata says otherwise.
FRESH_QUERY_AUGMENTATION = False
FRESH_MARKERS = False


class ColBERT(nn.Module):
    def __init__(
        self,
        encoder: PreTrainedModel,
        tokenizer,
        linear: nn.Linear,
        query_maxlen: int = 32,
        doc_maxlen: int = 180,
        query_augmentation: bool = True,
        markers: bool = True,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.tokenizer = tokenizer
        self.linear = linear
        self.query_maxlen = query_maxlen
        self.doc_maxlen = doc_maxlen
        self.query_augmentation = query_augmentation
        self.markers = markers
        vocab = tokenizer.get_vocab()
        self.query_marker_id = vocab.get(QUERY_MARKER, tokenizer.unk_token_id)
        self.doc_marker_id = vocab.get(DOC_MARKER, tokenizer.unk_token_id)
        # Punctuation is skipped on the document side (colbert-ai's mask_punctuation).
        self.skip_ids = torch.tensor(
            sorted(
                {
                    i
                    for c in string.punctuation
                    for i in tokenizer.encode(c, add_special_tokens=False)
                }
            )
        )

    @property
    def dim(self) -> int:
        return self.linear.out_features

    @property
    def conventions(self) -> dict[str, bool]:
        """What the checkpoint's metadata records, so every reader encodes as training did."""
        return {"query_augmentation": self.query_augmentation, "markers": self.markers}

    def _tokenize(self, texts: list[str], marker_id: int, maxlen: int, pad: str) -> dict:
        # With markers, ". " holds the marker's place, as in colbert-ai, then is overwritten.
        batch = self.tokenizer(
            [". " + t for t in texts] if self.markers else texts,
            padding=pad,
            truncation=True,
            max_length=maxlen,
            return_tensors="pt",
        )
        if self.markers:
            batch["input_ids"][:, 1] = marker_id
        return batch.to(self.encoder.device)

    def encode_queries(self, texts: list[str]) -> torch.Tensor:
        """[n, Lq, dim] normalised embeddings. With query augmentation Lq is `query_maxlen` and
        the [MASK] padding is embedded; without it Lq is the batch's longest query and pad
        positions are zero vectors, which add nothing to MaxSim."""
        if self.query_augmentation:
            batch = self._tokenize(texts, self.query_marker_id, self.query_maxlen, "max_length")
            ids = batch["input_ids"]
            ids[ids == self.tokenizer.pad_token_id] = self.tokenizer.mask_token_id
            hidden = self.encoder(input_ids=ids, attention_mask=batch["attention_mask"])[0]
            return nn.functional.normalize(self.linear(hidden), dim=-1)
        batch = self._tokenize(texts, self.query_marker_id, self.query_maxlen, "longest")
        hidden = self.encoder(**batch)[0]
        embeddings = nn.functional.normalize(self.linear(hidden), dim=-1)
        return embeddings * batch["attention_mask"].unsqueeze(-1).to(embeddings.dtype)

    def encode_docs(
        self, texts: list[str], maxlen: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """([n, L, dim] normalised embeddings, [n, L] bool mask of kept tokens)."""
        batch = self._tokenize(texts, self.doc_marker_id, maxlen or self.doc_maxlen, "longest")
        ids, attention = batch["input_ids"], batch["attention_mask"]
        hidden = self.encoder(input_ids=ids, attention_mask=attention)[0]
        mask = attention.bool() & ~torch.isin(ids, self.skip_ids.to(ids.device))
        embeddings = nn.functional.normalize(self.linear(hidden), dim=-1)
        return embeddings * mask.unsqueeze(-1), mask

    def encode_docs_sorted(
        self, texts: list[str], maxlen: int, chunk: int = 32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`encode_docs` over length-sorted chunks, each padded only to its own longest, returned
        in the input order: the same embeddings for less work where lengths vary (a training
        batch's passages on CACM are 46% real tokens when padded together; the demo's 83%)."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # characters ~ tokens
        parts = [
            self.encode_docs([texts[i] for i in order[lo : lo + chunk]], maxlen)
            for lo in range(0, len(order), chunk)
        ]
        width = max(e.shape[1] for e, _ in parts)
        embeddings = torch.cat(
            [nn.functional.pad(e, (0, 0, 0, width - e.shape[1])) for e, _ in parts]
        )
        mask = torch.cat([nn.functional.pad(m, (0, width - m.shape[1])) for _, m in parts])
        inverse = torch.tensor(order).argsort().to(embeddings.device)  # back to input order
        return embeddings[inverse], mask[inverse]

    def score_groups(
        self,
        queries: list[str],
        docs: list[str],
        width: int,
        doc_maxlen: int,
        in_batch: bool = False,
    ) -> torch.Tensor:
        """[b, width] MaxSim of each query against its own `width` documents (`docs` is the
        b x width list, query by query): the scores the distillation losses train. `in_batch`:
        [b, b x width], each query against every document of the batch."""
        encoded = self.encode_queries(queries)
        doc_emb, doc_mask = self.encode_docs_sorted(docs, doc_maxlen)
        # MaxSim in fp32 (outside autocast), as evaluation sums it: bf16 rounds a 20-term sum in
        # steps of 0.06 to 0.125, about half the gap between a query's neighbouring candidates.
        with torch.autocast(encoded.device.type, enabled=False):
            if in_batch:
                return maxsim(encoded.float(), doc_emb.float(), doc_mask)
            doc_emb = doc_emb.view(len(queries), width, *doc_emb.shape[1:])
            return maxsim_paired(
                encoded.float(), doc_emb.float(), doc_mask.view(len(queries), width, -1)
            )

    def save(
        self, path: Path, extra_metadata: dict | None = None, location: Path | None = None
    ) -> None:
        """colbert-ai's checkpoint layout, loadable by colbert-ai, PyLate and RAGatouille.

        `location` is where the folder will live once a temporary `path` is renamed there:
        colbert-ai reads it back as the checkpoint's own path."""
        path.mkdir(parents=True, exist_ok=True)
        prefix = self.encoder.base_model_prefix
        state = {f"{prefix}.{k}": v.contiguous() for k, v in self.encoder.state_dict().items()}
        state["linear.weight"] = self.linear.weight.detach().contiguous()
        save_file(state, str(path / "model.safetensors"), metadata={"format": "pt"})
        config = self.encoder.config.to_dict()
        config["architectures"] = ["HF_ColBERT"]
        (path / "config.json").write_text(json.dumps(config, indent=2))
        self.tokenizer.save_pretrained(str(path))
        metadata = {
            "query_token_id": QUERY_MARKER,
            "doc_token_id": DOC_MARKER,
            "query_maxlen": self.query_maxlen,
            "doc_maxlen": self.doc_maxlen,
            "dim": self.dim,
            "similarity": "cosine",
            "attend_to_mask_tokens": False,
            "mask_punctuation": True,
            "interaction": "colbert",
            "checkpoint": str((location or path).resolve()),
            # Read by adapt; colbert-ai ignores them and always uses both (see README).
            **self.conventions,
            **(extra_metadata or {}),
        }
        (path / METADATA).write_text(json.dumps(metadata, indent=2))

    @classmethod
    def load(
        cls,
        ref: str,
        dim: int = 128,
        query_maxlen: int = 32,
        doc_maxlen: int = 180,
        query_augmentation: bool | None = None,
        markers: bool | None = None,
    ) -> "ColBERT":
        """A colbert-ai checkpoint (path or hub id), or a plain encoder given a fresh head.

        A fresh head is the identity on the first `dim` coordinates (`dim` 0: the encoder's
        width) until `init_projection` fits it to a corpus; `ColBERT.is_fresh` tells the caller
        which case it got. The conventions (`None`: the checkpoint's own) are those its metadata
        records; a trained head without that record is colbert-ai's (both on); a fresh head gets
        FRESH_QUERY_AUGMENTATION and FRESH_MARKERS.
        """
        location = hub.resolve(ref, "student")
        local = Path(location)
        if not local.exists():
            from huggingface_hub import snapshot_download

            local = Path(snapshot_download(location))
        try:
            config = AutoConfig.from_pretrained(local)
            tokenizer = AutoTokenizer.from_pretrained(local)
            encoder = AutoModel.from_config(config)
        except (OSError, ValueError) as err:
            raise AdaptError(f"{ref}: not a loadable encoder ({err})") from None
        state = _read_weights(local)
        prefix = encoder.base_model_prefix + "."
        linear_weight = state.pop("linear.weight", None)
        encoder_state = {k.removeprefix(prefix): v for k, v in state.items()}
        missing, _ = encoder.load_state_dict(encoder_state, strict=False)
        missing = [k for k in missing if "position_ids" not in k]
        if missing:
            raise AdaptError(
                f"{ref}: weights lack {len(missing)} encoder tensors, e.g. {missing[0]}"
            )
        metadata_file = local / METADATA
        metadata = json.loads(metadata_file.read_text()) if metadata_file.is_file() else {}
        query_maxlen = metadata.get("query_maxlen", query_maxlen)
        doc_maxlen = metadata.get("doc_maxlen", doc_maxlen)
        fresh = linear_weight is None
        if query_augmentation is None:
            query_augmentation = metadata.get(
                "query_augmentation", FRESH_QUERY_AUGMENTATION if fresh else True
            )
        if markers is None:
            markers = metadata.get("markers", FRESH_MARKERS if fresh else True)
        hidden = encoder.config.hidden_size
        dim = dim or hidden
        if linear_weight is not None:
            linear = nn.Linear(hidden, linear_weight.shape[0], bias=False)
            linear.weight.data.copy_(linear_weight.float())
        else:
            if dim > hidden:
                raise AdaptError(
                    f"{ref}: a {dim}-dim head cannot be fitted to {hidden}-dim token "
                    f"embeddings; choose student.dim <= {hidden}"
                )
            linear = nn.Linear(hidden, dim, bias=False)
            linear.weight.data.copy_(torch.eye(dim, hidden))
        model = cls(
            encoder.eval(), tokenizer, linear, query_maxlen, doc_maxlen, query_augmentation, markers
        )
        model.is_fresh = fresh
        return model

    @torch.no_grad()
    def init_projection(self, texts: list[str], batch_size: int = 32) -> float:
        """Fit the fresh head to the top `dim` right singular vectors of the corpus's token
        embeddings (uncentred PCA): the rank-`dim` map that best preserves their dot products, so
        the untrained student already retrieves about as well as full-width MaxSim. Returns the
        share of the token embeddings' energy the head keeps."""
        self.linear.weight.data.copy_(torch.eye(self.dim, self.linear.in_features))
        identity = nn.Identity()
        head, self.linear = self.linear, identity
        chunks = []
        for start in range(0, len(texts), batch_size):
            embeddings, mask = self.encode_docs(texts[start : start + batch_size])
            chunks.append(embeddings[mask])
        self.linear = head
        tokens = torch.cat(chunks).float()
        _, singular, vh = torch.linalg.svd(tokens, full_matrices=False)
        self.linear.weight.data.copy_(vh[: self.dim])
        energy = singular.square()
        return float(energy[: self.dim].sum() / energy.sum())


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    safetensors = sorted(folder.glob("*.safetensors"))
    if safetensors:
        state: dict[str, torch.Tensor] = {}
        for file in safetensors:
            try:
                state.update(load_file(str(file)))
            except Exception as err:  # safetensors raises its own error types
                raise AdaptError(f"{file}: corrupt or truncated weights ({err})") from None
        return state
    binary = folder / "pytorch_model.bin"
    if binary.is_file():
        try:
            return torch.load(binary, map_location="cpu", weights_only=True)
        except Exception as err:
            raise AdaptError(f"{binary}: cannot load weights safely ({err})") from None
    raise AdaptError(f"{folder}: no model.safetensors or pytorch_model.bin")


def maxsim(queries: torch.Tensor, docs: torch.Tensor, doc_mask: torch.Tensor) -> torch.Tensor:
    """Late interaction for each query against each doc: [nq, Lq, d] x [nd, Ld, d] -> [nq, nd]."""
    sims = torch.einsum("qid,njd->qnij", queries, docs)
    sims = sims.masked_fill(~doc_mask[None, :, None, :], float("-inf"))
    return sims.max(dim=-1).values.sum(dim=-1)


def maxsim_paired(
    queries: torch.Tensor, docs: torch.Tensor, doc_mask: torch.Tensor
) -> torch.Tensor:
    """Each query against its own group of docs: [b, Lq, d] x [b, n, Ld, d] -> [b, n]."""
    sims = torch.einsum("bid,bnjd->bnij", queries, docs)
    sims = sims.masked_fill(~doc_mask[:, :, None, :], float("-inf"))
    return sims.max(dim=-1).values.sum(dim=-1)
