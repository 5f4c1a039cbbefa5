"""What both teacher engines read, below either of them: the progress callback they report to,
and where a teacher's weights are on disk (a GGUF file is dequantised once into the cache)."""

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from adapt import hub
from adapt.errors import AdaptError

Progress = Callable[[int], None]


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantise once and save as safetensors: a GGUF loads in minutes, safetensors in seconds."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    except Exception as err:  # gguf raises assorted errors on a truncated or foreign file
        raise AdaptError(
            f"{gguf}: not a loadable GGUF model ({type(err).__name__}: {err})"
        ) from None
    config = AutoConfig.for_model(
        **{k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    )
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=False)
    fresh.tie_weights()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    try:
        fresh.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _publish(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, target: Path) -> None:
    """Rename a finished conversion into place. Shards started together convert at once; the one
    whose rename comes second finds the folder filled, and keeps the first's."""
    try:
        os.replace(tmp, target)
    except OSError:
        if not (target / "config.json").is_file():
            raise


def local_model_dir(ref: str) -> tuple[str, str]:
    """(what from_pretrained takes, fingerprint); a GGUF becomes a cached safetensors folder."""
    location = hub.resolve(ref, "teacher")
    path = Path(location)
    if not path.exists():
        return location, f"hub:{location}"
    fingerprint = hub.weights_fingerprint(path, 1 << 20)
    if path.suffix == ".gguf":
        target = hub.cache_dir() / "converted" / f"{path.stem}-{fingerprint}"
        if not (target / "config.json").is_file():
            _convert_gguf(path, target)
        return str(target), f"{path.name}:{fingerprint}"
    return location, f"{path.name}:{fingerprint}"
