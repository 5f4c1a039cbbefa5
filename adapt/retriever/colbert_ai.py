"""colbert-ai (0.2.22), imported with its known problems handled here rather than in a fork.

1. On transformers 5, `HF_ColBERT.__init__` calls `init_weights()` where `post_init()` is needed,
   and every checkpoint load fails on `all_tied_weights_keys` (upstream PR #412, open): the class
   its factory builds gets an `init_weights` that runs `post_init()` first.
2. Its `Trainer` wraps the model in DDP with `device_ids`, which fails without CUDA and hangs the
   parent: adapt trains with its own loop and uses colbert-ai only to index and search.
3. Importing it sets the process-wide multiprocessing start method to spawn: restored on import,
   and indexing runs in-process (`nranks=1, avoid_fork_if_possible=True`).
4. Its four C++ search extensions compile one after another at first use (about 3 minutes on 2
   cores): `build_extensions` compiles them side by side, once, into
   `$ADAPT_CACHE/torch_extensions` (or `TORCH_EXTENSIONS_DIR` when set), and later runs reuse them.
5. `Checkpoint(path)` without `checkpoint=path` in its config reads the path saved in the
   checkpoint's metadata, which is stale once the folder moves, and falls back to
   `bert-base-uncased` from the hub: `checkpoint()` always passes the real path.
"""

import contextlib
import functools
import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

from adapt import hub
from adapt.errors import AdaptError


def extensions_dir() -> Path:
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR", hub.cache_dir() / "torch_extensions"))


@functools.cache
def load() -> SimpleNamespace:
    """The parts of colbert-ai adapt uses, with the problems above handled."""
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(extensions_dir()))
    start_method = multiprocessing.get_start_method(allow_none=True)
    try:
        import colbert.modeling.base_colbert as base_colbert
        from colbert import Indexer, Searcher
        from colbert.infra import ColBERTConfig, Run, RunConfig
        from colbert.modeling import hf_colbert
        from colbert.modeling.checkpoint import Checkpoint
        from colbert.modeling.colbert import ColBERT as ColBERTModel
        from colbert.search.index_storage import IndexScorer
    except ImportError as err:
        raise AdaptError(
            f"the PLAID backend needs colbert-ai and faiss: pip install 'adapt[plaid]' ({err})"
        ) from None
    finally:
        multiprocessing.set_start_method(start_method, force=True)
    base_colbert.class_factory = _fixed_factory(hf_colbert.class_factory)
    return SimpleNamespace(
        Indexer=Indexer,
        Searcher=Searcher,
        Checkpoint=Checkpoint,
        IndexScorer=IndexScorer,
        ColBERTModel=ColBERTModel,
        ColBERTConfig=ColBERTConfig,
        Run=Run,
        RunConfig=RunConfig,
    )


def build_extensions() -> None:
    """Compile (or load) the extensions CPU search needs, in parallel threads.

    Each compile is a ninja subprocess in its own build folder, so threads overlap them. The
    model class's extension is among them: colbert-ai loads it only when a Checkpoint is built,
    and adapt encodes the queries itself."""
    from concurrent.futures import ThreadPoolExecutor

    from colbert.search.strided_tensor import StridedTensor

    colbert = load()
    owners = [colbert.ColBERTModel, colbert.IndexScorer, StridedTensor]
    with ThreadPoolExecutor(len(owners)) as pool:
        for done in [pool.submit(o.try_load_torch_extensions, use_gpu=False) for o in owners]:
            done.result()


def _fixed_factory(factory):
    if getattr(factory, "adapt_fixed", False):
        return factory

    def fixed(name_or_path):
        cls = factory(name_or_path)
        base_init = cls.init_weights

        def init_weights(self):
            # transformers 5 sets `all_tied_weights_keys` in post_init, which calls us back.
            if "all_tied_weights_keys" in self.__dict__ or not hasattr(self, "post_init"):
                base_init(self)
            else:
                self.post_init()

        cls.init_weights = init_weights
        return cls

    fixed.adapt_fixed = True
    return fixed


def config(checkpoint: Path, **settings):
    """A ColBERTConfig that names its checkpoint (problem 5)."""
    return load().ColBERTConfig(checkpoint=str(checkpoint), **settings)


def checkpoint(path: Path):
    """colbert-ai's own encoder for an adapt (or colbert-ai) checkpoint folder."""
    colbert = load()
    return colbert.Checkpoint(str(path), colbert_config=config(path), verbose=0)


@contextlib.contextmanager
def run_context(index_root: Path) -> Iterator[None]:
    """colbert-ai's run settings: one in-process rank (problem 3), indexes under `index_root`."""
    colbert = load()
    root = str(index_root.resolve())
    settings = colbert.RunConfig(nranks=1, avoid_fork_if_possible=True, root=root, index_root=root)
    with colbert.Run().context(settings):
        yield


@contextlib.contextmanager
def log_to(path: Path) -> Iterator[None]:
    """Send colbert-ai's prints and tqdm bars to a log file, away from adapt's progress bars."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        path.open("a") as handle,
        contextlib.redirect_stdout(handle),
        contextlib.redirect_stderr(handle),
    ):
        yield
