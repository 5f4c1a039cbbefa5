"""Teacher backends behind one small interface: label scores, and continuation log-probabilities.

`load_backend` picks the engine a recipe names: this module's `TransformersBackend`, or
`VLLMBackend` (adapt/teacher/vllm_backend.py, the `[vllm]` extra). `TransformersBackend` runs
causal LMs (including GGUF files) and seq2seq models (flan-t5) on CPU or GPU. Work is
length-bucketed (sorted by token count, so a batch pads little), and a causal model
applies its vocabulary projection only at the positions that are scored, not at every token.
Scores always come from logits or log-probabilities, never from generated text, so a document
that says "Answer A" cannot change how a score is parsed.
"""

import inspect
import json
from typing import Protocol

import numpy as np
import torch
from torch import nn

from adapt import hub, precision
from adapt.config import TeacherConfig
from adapt.device import resolve
from adapt.errors import AdaptError
from adapt.teacher.base import Progress, local_model_dir
from adapt.teacher.labels import is_labels


class Backend(Protocol):
    fingerprint: str
    tokenizer: object
    is_seq2seq: bool

    def label_logits(
        self, prompts: list[str], label_ids: list[int], progress: Progress | None = None
    ) -> np.ndarray:
        """Logits, or log-probabilities, of the labels: callers use only their differences."""
        ...

    def continuation_logprobs(
        self, prompts: list[str], continuations: list[str], progress: Progress | None = None
    ) -> np.ndarray: ...

    def generate(
        self, prompts: list[str], max_new_tokens: int, temperature: float, seed: int
    ) -> list[str]: ...


class TransformersBackend:
    def __init__(
        self,
        ref: str,
        dtype: str = "auto",
        batch_size: int = 8,
        device: str = "auto",
        trust_remote_code: bool = False,
    ) -> None:
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        location, self.fingerprint = local_model_dir(ref)
        self.device = resolve(device, "teacher.device")
        dtype = precision.resolve(dtype, self.device)
        self.batch_size = batch_size
        try:
            config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
            self.tokenizer = AutoTokenizer.from_pretrained(
                location, trust_remote_code=trust_remote_code
            )
            self.is_seq2seq = bool(getattr(config, "is_encoder_decoder", False))
            auto = AutoModelForSeq2SeqLM if self.is_seq2seq else AutoModelForCausalLM
            self.model = auto.from_pretrained(
                location, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise AdaptError(f"teacher '{ref}': cannot load ({err})") from None
        self.model.to(self.device).eval()
        # Sharing passage prefixes pays where compute is the limit (CPU: 1.9x on the demo). On a
        # GPU it runs one passage at a time and loses to big independent batches (H100, 0.5B
        # shape: 194 vs 1358 prompts/s; docs/benchmarks.md), so it is a CPU-only strategy.
        self.share_prefixes = self.device.type == "cpu"
        # transformers 5 renamed `past_key_values` to `cache` (the old name goes in 5.40).
        forward = inspect.signature(self.model.base_model.forward).parameters
        self._cache_argument = "cache" if "cache" in forward else "past_key_values"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.fingerprint = json.dumps([self.fingerprint, dtype])

    @property
    def unit_size(self) -> int:
        """Prompts in one call from the scorer (adapt/teacher/engine.py): one batch."""
        return self.batch_size

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        order = sorted(range(len(lengths)), key=lambda i: lengths[i])
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def _pad(self, sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(s) for s in sequences)
        pad = self.tokenizer.pad_token_id
        ids = torch.full((len(sequences), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=True)["input_ids"]

    def _hidden(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model.base_model(input_ids=ids, attention_mask=mask)[0]

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        head: nn.Module = self.model.get_output_embeddings()
        return head(hidden).float()

    @torch.inference_mode()
    def label_logits(
        self, prompts: list[str], label_ids: list[int], progress: Progress | None = None
    ) -> np.ndarray:
        """Logits of the label tokens at the answer position: [len(prompts), len(label_ids)]."""
        encoded = self._encode(prompts)
        out = np.zeros((len(prompts), len(label_ids)), dtype=np.float32)
        labels = torch.tensor(label_ids, device=self.device)
        for rows in self._batches([len(e) for e in encoded]):
            ids, mask = self._pad([encoded[r] for r in rows])
            if self.is_seq2seq:
                start = torch.full(
                    (len(rows), 1), self.model.config.decoder_start_token_id, device=self.device
                )
                logits = (
                    self.model(input_ids=ids, attention_mask=mask, decoder_input_ids=start)
                    .logits[:, 0]
                    .float()
                )
            else:
                hidden = self._hidden(ids, mask)
                last = mask.sum(dim=1) - 1
                logits = self._project(hidden[torch.arange(len(rows)), last])
            out[rows] = logits[:, labels].cpu().numpy()
            if progress:
                progress(len(rows))
        return out

    @torch.inference_mode()
    def continuation_logprobs(
        self, prompts: list[str], continuations: list[str], progress: Progress | None = None
    ) -> np.ndarray:
        """Mean log-probability of each continuation's tokens given its prompt (teacher-forced).

        Query likelihood puts the document first, so every query scored against one document
        shares its prompt. On a CPU a causal model encodes each shared prompt once and scores all
        its continuations against the cached keys and values: the cost becomes (documents x
        document length) + (pairs x query length) instead of pairs x (document + query length).
        """
        prefix = self._encode(prompts)
        suffix = self.tokenizer(continuations, add_special_tokens=False)["input_ids"]
        if any(not s for s in suffix):
            raise AdaptError("a continuation (query) tokenised to nothing")
        out = np.zeros(len(prompts), dtype=np.float32)
        groups: dict[str, list[int]] = {}
        for row, prompt in enumerate(prompts):
            groups.setdefault(prompt, []).append(row)
        sharing = self.share_prefixes and not self.is_seq2seq
        shared = [rows for rows in groups.values() if len(rows) > 1 and sharing]
        single = [r for rows in groups.values() if len(rows) == 1 or not sharing for r in rows]
        for rows in shared:
            for start in range(0, len(rows), self.batch_size * 4):
                chunk = rows[start : start + self.batch_size * 4]
                out[chunk] = self._shared_prefix(prefix[chunk[0]], [suffix[r] for r in chunk])
                if progress:
                    progress(len(chunk))
        lengths = [len(prefix[r]) + len(suffix[r]) for r in single]
        for batch in self._batches(lengths):
            rows = [single[b] for b in batch]
            out[rows] = self._independent(rows, prefix, suffix)
            if progress:
                progress(len(rows))
        return out

    @torch.inference_mode()
    def generate(
        self, prompts: list[str], max_new_tokens: int, temperature: float, seed: int
    ) -> list[str]:
        """One sampled continuation per prompt, up to its first line break: what a query
        generator writes. Seeded, so the same prompts and seed give the same texts."""
        encoded = self._encode(prompts)
        stops = [self.tokenizer.eos_token_id, *_line_break_ids(self.tokenizer)]
        texts = [""] * len(prompts)
        # Pure sampling at `temperature` (no top-k or top-p cut); 0 is greedy decoding.
        sampling = (
            {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
            if temperature > 0
            else {"do_sample": False}
        )
        torch.manual_seed(seed)
        for rows in self._batches([len(e) for e in encoded]):
            width = max(len(encoded[r]) for r in rows)
            pad = self.tokenizer.pad_token_id
            # Left padding: every prompt ends where generation starts.
            ids = torch.tensor([[pad] * (width - len(encoded[r])) + encoded[r] for r in rows])
            mask = torch.tensor(
                [[0] * (width - len(encoded[r])) + [1] * len(encoded[r]) for r in rows]
            )
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                max_new_tokens=max_new_tokens,
                eos_token_id=stops,
                pad_token_id=pad,
                **sampling,
            )
            new = out if self.is_seq2seq else out[:, width:]
            for row, tokens in zip(rows, new.tolist()):
                texts[row] = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return [text.split("\n")[0].strip() for text in texts]

    def _shared_prefix(self, prefix: list[int], suffixes: list[list[int]]) -> np.ndarray:
        from transformers import DynamicCache

        cache = DynamicCache()
        name = self._cache_argument
        encoded = self.model.base_model(
            input_ids=torch.tensor([prefix], device=self.device), use_cache=True, **{name: cache}
        )
        last_prefix = encoded[0][0, -1]  # predicts each continuation's first token
        cache.batch_repeat_interleave(len(suffixes))
        ids, mask = self._pad(suffixes)
        full_mask = torch.cat(
            [torch.ones(len(suffixes), len(prefix), dtype=mask.dtype, device=self.device), mask],
            dim=1,
        )
        hidden = self.model.base_model(
            input_ids=ids, attention_mask=full_mask, use_cache=True, **{name: cache}
        )[0]
        means = []
        for i, tokens in enumerate(suffixes):
            predictors = torch.cat([last_prefix[None], hidden[i, : len(tokens) - 1]])
            logprobs = torch.log_softmax(self._project(predictors), -1)
            target = torch.tensor(tokens, device=self.device)[:, None]
            means.append(logprobs.gather(-1, target).mean())
        return torch.stack(means).cpu().numpy()

    def _independent(
        self, rows: list[int], prefix: list[list[int]], suffix: list[list[int]]
    ) -> np.ndarray:
        if self.is_seq2seq:
            ids, mask = self._pad([prefix[r] for r in rows])
            targets, target_mask = self._pad([suffix[r] for r in rows])
            logits = self.model(input_ids=ids, attention_mask=mask, labels=targets).logits
            logprobs = torch.log_softmax(logits.float(), dim=-1)
            picked = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * target_mask
            return (picked.sum(dim=1) / target_mask.sum(dim=1)).cpu().numpy()
        ids, mask = self._pad([prefix[r] + suffix[r] for r in rows])
        hidden = self._hidden(ids, mask)
        means = torch.empty(len(rows), device=self.device)
        for i, r in enumerate(rows):
            start, count = len(prefix[r]), len(suffix[r])
            # Position t predicts token t+1: the continuation's predictors end one early.
            logits = self._project(hidden[i, start - 1 : start - 1 + count])
            target = ids[i, start : start + count]
            means[i] = torch.log_softmax(logits, -1).gather(-1, target[:, None]).mean()
        return means.cpu().numpy()


def _line_break_ids(tokenizer) -> list[int]:
    """Tokens that are a line break, to stop a generated query at the end of its line."""
    ids = tokenizer.encode("\n", add_special_tokens=False)
    return ids if len(ids) == 1 else []


ENGINES = ("transformers", "vllm")


def check_teacher(t: TeacherConfig) -> None:
    """Fail on a bad engine, dtype or device before any work, not after indexing."""
    if is_labels(t.model):
        return  # judgments: no model, engine or device
    if t.engine not in ENGINES:
        raise AdaptError(f"unknown teacher engine '{t.engine}' (known: {', '.join(ENGINES)})")
    if t.dtype not in precision.CHOICES:
        raise AdaptError(
            f"unknown teacher dtype '{t.dtype}' (known: {', '.join(precision.CHOICES)})"
        )
    resolve(t.device, "teacher.device")
    hub.check(t.model, "teacher")  # a missing model fails now, not after the start is built


def load_backend(t: TeacherConfig) -> Backend:
    """The backend for a TeacherConfig `t` (its engine, model, dtype and engine settings), in
    this process; `ray_engine.load_teacher` puts it on a Ray cluster when `t` names one."""
    check_teacher(t)
    if t.engine == "vllm":
        from adapt.teacher.vllm_backend import VLLMBackend

        return VLLMBackend(
            t.model,
            t.dtype,
            t.tensor_parallel_size,
            t.gpu_memory_utilization,
            t.max_model_len,
            t.trust_remote_code,
        )
    return TransformersBackend(t.model, t.dtype, t.batch_size, t.device, t.trust_remote_code)
