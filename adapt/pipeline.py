"""The run loop: the stages of adapt/stages/ in order, over iterations. Each stage's step skips
it when its output exists with the same record, so a killed run resumes where it stopped.

Layout of a run directory:
    config.toml, config.json, stages.json, queries.jsonl (and teacher-cache.sqlite when private)
    baselines/{bm25, biencoder}.json       what the user has without adapt (with qrels)
    generated/                             queries the teacher wrote (corpus-only runs)
    iter-0/checkpoint                      the start (with its fitted head, if it was fresh)
    iter-N/{index.pt | plaid/ | faiss/, eval.json}  index (by kind) and metrics of iteration N
    iter-N/{hybrid-weights, eval-hybrid}.json  the student fused with BM25 and the bi-encoder:
                                           weights chosen on the check, metrics (with qrels)
    hybrid/{bm25, biencoder, weights.json} their indexes (built once per run), chosen weights
    iter-N/{candidates, pointwise, targets, pairs}.jsonl, train-log.jsonl, checkpoint  (N >= 1)
    iter-N/step-S/{checkpoint, index, eval.json}  checkpoints kept along training (N >= 1)
    guard/{queries.jsonl, check.json}      the label-free check
    report.json, report.md
"""

from pathlib import Path

import torch
from rich.console import Console

from adapt import plan, report
from adapt.config import Config
from adapt.io import write_jsonl
from adapt.stages import (
    baselines,
    candidates,
    evaluate,
    generate,
    guard,
    hybrid,
    index,
    pairs,
    score,
    start,
    targets,
    train,
)
from adapt.stages.context import RunContext


class Pipeline(RunContext):
    """A run directory's stages, in order: the start, then per iteration its index and
    evaluation, candidates, teacher scores, targets, pairs and training; the label-free check
    after the last."""

    def __init__(
        self,
        config: Config,
        run_dir: Path,
        console: Console,
        force: bool = False,
        cache: Path | None = None,
        shard: tuple[int, int] | None = None,
        baselines: bool = True,
        check: bool = True,
    ):
        super().__init__(config, run_dir, console, force, cache, shard)
        self.with_baselines = baselines  # a bench computes them once per domain, as methods
        # The label-free check: not in a bench (it has labels) nor in a shard (it only scores).
        self.checking = (
            check and not shard and config.generate.check_queries > 0 and config.iterations > 0
        )

    def plan(self) -> str:
        return plan.plan(
            self.config, self.inputs, self.path, self.cache_path, self.teacher_dtype, self.checking
        )

    def resuming(self) -> str | None:
        return plan.resuming(self.path, self.run.stages, self.cache_path)

    def run_all(self) -> dict:
        try:
            return self._loop()
        finally:
            self.run.close()

    def _loop(self) -> dict:
        resumed = self.resuming()
        if resumed:
            self.console.print(resumed)
        self.console.print(self.plan())
        torch.manual_seed(self.config.distill.seed)
        fp = start.step(self)
        last = self.config.iterations
        indexed: dict[int, str] = {}  # each iteration's index record, for the hybrid stage
        for iteration in range(last + 1):
            if iteration:
                self.console.rule(f"iteration {iteration}")
            for kept in self.kept(iteration):  # along training, for the check to choose among
                kept_index, kept_fp = index.step(self, iteration, fp, kept)
                evaluate.step(self, iteration, kept_index, kept_fp, kept)
            built, index_fp = index.step(self, iteration, fp)
            evaluate.step(self, iteration, built, index_fp)
            indexed[iteration] = index_fp
            if iteration == 0:
                if self.with_baselines:
                    baselines.step(self)
                if not self.config.data.queries:
                    generate.step(self, built, index_fp)
                write_jsonl(
                    self.path / "queries.jsonl",
                    ({"_id": q.id, "text": q.text} for q in self.inputs.queries),
                )
            if iteration == last:
                check = guard.step(self, index_fp) if self.checking else None
                for i, i_fp in indexed.items():  # after the check: it chooses their weights
                    hybrid.step(self, i, built if i == last else None, i_fp, check)
                break
            fp = candidates.step(self, iteration, built, index_fp)
            fp = score.step(self, iteration + 1, fp)
            if self.checking and iteration == 0 and not self.labels:  # the teacher is loaded
                guard.queries_step(self)
            fp = targets.step(self, iteration + 1, fp)
            fp = pairs.step(self, iteration + 1, fp)
            fp = train.step(self, iteration + 1, fp)
        return report.build(self.path, self.config)


def run(
    config: Config,
    run_dir: Path,
    console: Console,
    force: bool = False,
    shard: tuple[int, int] | None = None,
    cache: Path | None = None,
) -> dict:
    """The loop; teacher scores go to `cache` (default: the run directory's own file)."""
    return Pipeline(config, run_dir, console, force, cache, shard).run_all()
