"""Teacher throughput on a Ray cluster against the local engine: same teacher, prompts and units.

Prompts: query likelihood (the default template) for the demo set's first `--queries` adaptation
questions against their BM25 top-k, as `adapt score` would send them. Rows: the local engine in
this process at each `--threads`, then a `RayTeacher` with each `--actors` count (one CPU and
one thread each) on the cluster at `--ray-address`. Each row scores into a fresh cache; loading
the teacher (every actor's) is left out of its time. Each row's scores are compared with the
first row's: the units are the same, so on the same machine at the same thread count they should
be the same bits.
With `--driver-prompts N` a last row times the driver alone on N prompts (every demo question
against every passage): a stand-in teacher with the real tokenizer that answers zeros, in units
of 64, so the row is the cache lookups, truncation, prompt building, units and commits one
driver manages per second, the ceiling on what it can feed a cluster.

    ray start --head --num-cpus 2 --include-dashboard false
    python bench/ray_throughput.py --ray-address auto [--queries 40 --top-k 8]
    ray stop
"""

import argparse
import dataclasses
import os
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import ray
import torch

from adapt.config import TeacherConfig
from adapt.data import read_corpus, read_queries
from adapt.precision import BF16_CPU_FLAGS, cpu_flags, teacher_dtype
from adapt.progress import _cpu
from adapt.retriever.bm25 import bm25_search
from adapt.teacher.backends import load_backend
from adapt.teacher.cache import ScoreCache
from adapt.teacher.ray_engine import RayTeacher
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template

DEMO = Path(__file__).resolve().parents[1] / "demo" / "pyfaq"


def timed(backend, items, template) -> tuple[np.ndarray, float, float]:
    """Scores, seconds, and the machine's load (1-minute average) as the row started: other
    jobs on a shared CPU show there."""
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        scorer = TeacherScorer(backend, ScoreCache(Path(folder) / "c.sqlite"), template)
        start = time.perf_counter()
        scores = scorer.score_pointwise(items)
        return scores, time.perf_counter() - start, load


class DriverAlone:
    """The teacher's tokenizer, and zeros for scores: a cluster that takes no time."""

    is_seq2seq, unit_size, fingerprint = False, 64, "driver-alone"

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> np.ndarray:
        return np.zeros(len(prompts), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default=TeacherConfig.model)
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--threads", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--actors", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--ray-address", default="auto")
    parser.add_argument("--driver-prompts", type=int, default=0)
    args = parser.parse_args()

    docs = read_corpus(DEMO)
    queries = read_queries(DEMO, "train")[: args.queries]
    ranking, _ = bm25_search(docs, queries, args.top_k)
    by_id = {d.id: d for d in docs}
    items = [(q, by_id[doc]) for q in queries for doc, _ in ranking[q.id]]
    template = load_template(TeacherConfig.pointwise_prompt, "pointwise")
    settings = TeacherConfig(model=args.teacher, dtype=args.dtype)
    rows = []
    local = load_backend(settings)
    for threads in args.threads:
        torch.set_num_threads(threads)
        rows.append((f"local engine, {threads} thread(s)", *timed(local, items, template)))
    for actors in args.actors:
        pool = RayTeacher(
            dataclasses.replace(settings, ray_address=args.ray_address, ray_actors=actors)
        )
        ray.get([actor.handle.describe.remote() for actor in pool.pool])  # every teacher loaded
        rows.append((f"Ray, {actors} actor(s) of 1 CPU", *timed(pool, items, template)))
        pool.close()
    if args.driver_prompts:
        everything = [(q, d) for q in read_queries(DEMO) for d in docs][: args.driver_prompts]
        _, seconds, load = timed(DriverAlone(local.tokenizer), everything, template)
        driver = (len(everything), seconds, load)

    flags = sorted(f for f in cpu_flags() if f in BF16_CPU_FLAGS) or ["no bf16 units"]
    dtype = teacher_dtype(args.dtype, "transformers", "cpu")
    print(
        f"{len(items)} query-likelihood prompts ({len(queries)} demo questions x BM25 top-"
        f"{args.top_k}), teacher {args.teacher} at {dtype}; {_cpu()} ({', '.join(flags)}), "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n"
    )
    print("| engine | prompts/s | seconds | load at start | max abs. diff. from the first row |")
    print("|---|---|---|---|---|")
    for name, scores, seconds, load in rows:
        diff = float(np.max(np.abs(scores - rows[0][1])))
        print(f"| {name} | {len(items) / seconds:.2f} | {seconds:.1f} | {load:.1f} | {diff:.2g} |")
    if args.driver_prompts:
        count, seconds, load = driver
        rate = count / seconds
        print(f"\ndriver alone: {count} prompts in {seconds:.1f} s, {rate:.0f}/s (load {load:.1f})")


if __name__ == "__main__":
    main()
