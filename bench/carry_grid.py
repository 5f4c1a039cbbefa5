"""Issue #35's trainer grid in one call, for a lent GPU: bench/carry.py's runs in order of
priority, the choice made on SciFact's dev claims, each test split read once for it.

1. SciFact, the labels teacher on all 554 `train:adapt` claims: the steps curve (1 to 16 passes)
   at the start's top-16 and top-32 candidates. The checkpoint with the best `train:dev`
   nDCG@10 is chosen, and only it reads the 300 test claims. `--chosen k16:4` skips this part
   with a choice made by an earlier call (docs/benchmarks.md has the top-16 curve).
2. The chosen setting (its passes over the queries, its candidates) on the demo (train -> test)
   and on CACM, Cranfield and Vaswani (adapted on half-1 with its judgments, scored on half-2).
3. The same on SciFact with the label-free target that needs no LLM (per-query z-scores of the
   start, BM25 and the bi-encoder), chosen on dev and read on test once.
4. The queries curve: 50, 100 and 300 claims, with both targets.

Every run is bench/carry.py, so the pipeline's own targets, pairs and trainer; its result.json
goes into one summary (`--summary`), rewritten after each run. Runs stop being started when the
`--budget` (seconds) is nearly spent, so a cut-off call still brings back what finished.

    python bench/carry_grid.py --student bench/_device/minilm16 --beir bench/_device/beir \\
        --out /tmp/grid --summary $OUT/grid.json --budget 480

On the H200 a step took 0.15 s and scoring a SciFact checkpoint 14 s: part 1 alone is about 10
minutes, the whole grid about 25, more than one session's device time; `--depths`, `--passes` and
`--chosen` split it across calls.

`--student` may hold `model16.safetensors` (the start's weights rounded to fp16, so the model
fits the 64 MiB a device call carries): they are restored to an fp32 folder first, and every run,
start included, uses those weights.
"""

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from carry import judged

from adapt.config import DistillConfig
from adapt.data import read_qrels, read_queries
from adapt.distill.train import total_steps
from adapt.io import read_json

PASSES = (1, 2, 4, 8, 16)


def fp32_student(folder: Path, work: Path) -> Path:
    """The student folder to load: `folder` itself, or its fp16 weights restored to fp32."""
    if not (folder / "model16.safetensors").is_file():
        return folder
    from safetensors.torch import load_file, save_file

    target = work / "student-fp32"
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("model16.*"), dirs_exist_ok=True)
    weights = load_file(folder / "model16.safetensors")
    restored = {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}
    save_file(restored, target / "model.safetensors")
    return target


def adapt_count(data: Path, split: str, qrels: str, most: int) -> int:
    """How many adaptation queries bench/carry.py keeps (judged ones, at most `most`)."""
    n = len(judged(read_queries(data, split), read_qrels(data / "qrels" / f"{qrels}.tsv")))
    return min(n, most) if most else n


def per_pass(n: int) -> int:
    """Optimizer steps in one pass over `n` queries at the default batch (the trainer's count)."""
    return total_steps(n, DistillConfig(epochs=1))


class Grid:
    def __init__(self, args: argparse.Namespace, student: Path) -> None:
        self.args, self.student = args, student
        self.deadline = time.time() + args.budget
        self.summary: dict = {"runs": {}, "chosen": {}, "skipped": []}

    def left(self) -> float:
        return self.deadline - time.time()

    def run(
        self,
        name: str,
        data: Path,
        splits: list[str],
        sets: list[str],
        steps: list[int],
        test_at: int | None = None,
        target: str = "labels",
        most: int = 0,
    ) -> dict | None:
        """One bench/carry.py run (or its test read, when already trained); None if skipped."""
        if self.left() < self.args.margin:
            self.summary["skipped"].append(f"{data.name}/{name}")
            return None
        out = self.args.out / data.name
        command = [
            sys.executable, str(Path(__file__).parent / "carry.py"), "--data", str(data),
            *splits, "--target", target, "--out", str(out), "--name", name,
            "--eval-at", ",".join(map(str, steps)),
            "--set", f"student.model={self.student}", "--set", f"distill.steps={max(steps)}",
            *[x for s in sets for x in ("--set", s)],
        ]  # fmt: skip
        if most:
            command += ["--max-adapt", str(most)]
        if test_at:
            command += ["--test-at", str(test_at)]
        began = time.time()
        try:
            subprocess.run(command, check=True, timeout=max(1.0, self.left() - 15))
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            self.summary["runs"][f"{data.name}/{name}"] = {"failed": str(error)}
            self.save()
            return None
        result = read_json(out / name / "result.json")
        result["wall_s"] = round(time.time() - began, 1)
        self.summary["runs"][f"{data.name}/{name}"] = result
        self.save()
        return result

    def save(self) -> None:
        self.args.summary.write_text(json.dumps(self.summary, indent=1))


def best(result: dict) -> tuple[int, float]:
    """The checkpoint (step) with the best dev nDCG@10."""
    rows = result["checkpoints"]
    step = max(rows, key=lambda s: rows[s]["dev"]["ndcg@10"])
    return int(step), rows[step]["dev"]["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", type=Path, required=True)
    parser.add_argument("--beir", type=Path, required=True, help="holds scifact, cacm, ...")
    parser.add_argument("--demo", type=Path, default=Path("demo/pyfaq"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--summary", type=Path, required=True)
    parser.add_argument("--budget", type=float, default=480)
    parser.add_argument("--margin", type=float, default=45, help="least seconds to start a run")
    parser.add_argument("--passes", default=",".join(map(str, PASSES)))
    parser.add_argument("--depths", default="k16,k32", help="candidate depths of part 1")
    parser.add_argument(
        "--chosen", default="", help="DEPTH:PASSES chosen earlier (e.g. k16:4): skips part 1"
    )
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    grid = Grid(args, fp32_student(args.student, args.out))
    passes = [int(p) for p in args.passes.split(",")]
    scifact = args.beir / "scifact"
    s_splits = ["--adapt", "train:adapt", "--dev", "train:dev", "--test", "test"]

    def curve(n: int) -> list[int]:
        return [p * per_pass(n) for p in passes]

    # 1. The steps curve with the labels teacher, top-16 and top-32; choose on dev; test once.
    n_all = adapt_count(scifact, "train:adapt", "train", 0)
    depths = {"k16": [], "k32": ["distill.top_k=32", "distill.nway=32"]}
    if args.chosen:
        depth, chosen_passes = args.chosen.split(":")
        epochs = float(chosen_passes)
    else:
        done = {}
        for depth in args.depths.split(","):
            result = grid.run(f"labels-{depth}", scifact, s_splits, depths[depth], curve(n_all))
            if result:
                done[depth] = result
        if not done:
            grid.save()
            return
        depth = max(done, key=lambda d: best(done[d])[1])
        step, _ = best(done[depth])
        epochs = step / per_pass(n_all)
        grid.run(f"labels-{depth}", scifact, s_splits, depths[depth], curve(n_all), test_at=step)
    grid.summary["chosen"]["labels"] = {"depth": depth, "passes": epochs}

    # 2. The chosen setting elsewhere: its passes over each set's own adaptation queries.
    others = [
        (args.demo, ["--adapt", "train:adapt", "--dev", "train:dev", "--test", "test"], "train"),
        *[
            (args.beir / name, ["--adapt", "half-1", "--test", "half-2"], "test")
            for name in ("cranfield", "cacm", "vaswani")
        ],
    ]
    for data, splits, qrels in others:
        n = adapt_count(data, splits[1], qrels, 0)
        at = max(1, round(epochs * per_pass(n)))
        qrel_args = ["--adapt-qrels", qrels, "--test-qrels", "test"]
        grid.run(f"labels-{depth}", data, splits + qrel_args, depths[depth], [at], test_at=at)

    # 3. The label-free target without an LLM, on SciFact: chosen on dev, test once.
    name, steps = f"fused-{depth}", curve(n_all)
    fused = grid.run(name, scifact, s_splits, depths[depth], steps, None, "fused")
    if fused:
        f_step, _ = best(fused)
        grid.summary["chosen"]["fused"] = {"depth": depth, "step": f_step}
        grid.run(name, scifact, s_splits, depths[depth], steps, f_step, "fused")

    # 4. The queries curve, both targets.
    for most in (50, 100, 300):
        n = adapt_count(scifact, "train:adapt", "train", most)
        for target in ("labels", "fused"):
            name = f"{target}-{depth}-n{most}"
            grid.run(name, scifact, s_splits, depths[depth], curve(n), None, target, most)
    grid.save()


if __name__ == "__main__":
    main()
