"""Per-run reports: `report.json` (everything) and `report.md` (the table people read)."""

import json
import statistics
from pathlib import Path

from adapt.config import Config
from adapt.evaluate import METRICS, describe_test, paired_test
from adapt.io import atomic_open, read_json, read_jsonl, write_json

NOISE_TAU = 0.05  # below this teacher-student agreement the teacher looks like noise


def _iterations(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.glob("iter-*") if p.name.split("-")[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def build(run_dir: Path, config: Config | None = None, timings: dict | None = None) -> dict:
    config_dict = config.to_dict() if config else read_json(run_dir / "config.json")
    rows, start_values = [], None
    for folder in _iterations(run_dir):
        iteration = int(folder.name.split("-")[1])
        row: dict = {"iteration": iteration}
        if (folder / "eval.json").is_file():
            evaluation = read_json(folder / "eval.json")
            row["metrics"] = evaluation["metrics"]
            if start_values is None:
                start_values = evaluation["per_query"]
            else:
                row["vs_start"] = {
                    m: paired_test(start_values[m], evaluation["per_query"][m]) for m in METRICS
                }
        if (folder / "teacher-diagnostics.json").is_file():
            row["teacher_diagnostics"] = read_json(folder / "teacher-diagnostics.json")
        if (folder / "pointwise-diagnostics.json").is_file():
            row["teacher_agreement"] = read_json(folder / "pointwise-diagnostics.json")
        if (folder / "train-log.jsonl").is_file():
            log = read_jsonl(folder / "train-log.jsonl")
            row["train"] = {
                "steps": len(log),
                "first_loss": log[0]["loss"] if log else None,
                "last_loss": log[-1]["loss"] if log else None,
            }
        if (folder / "pointwise.jsonl").is_file():
            spreads = [
                statistics.pstdev(r["scores"])
                for r in read_jsonl(folder / "pointwise.jsonl")
                if len(r["scores"]) > 1
            ]
            row["teacher_pointwise_spread"] = statistics.mean(spreads) if spreads else None
        if (folder / "start.json").is_file():
            row["start"] = read_json(folder / "start.json")
        rows.append(row)
    summary = {
        "run": str(run_dir),
        "teacher": config_dict["teacher"]["model"],
        "pointwise_prompt": config_dict["teacher"]["pointwise_prompt"],
        "pairwise_prompt": config_dict["teacher"]["pairwise_prompt"],
        "student": config_dict["student"]["model"],
        "config": config_dict,
        "iterations": rows,
        "timings_s": timings or {},
    }
    write_json(run_dir / "report.json", summary)
    with atomic_open(run_dir / "report.md") as handle:
        handle.write(markdown(summary))
    return summary


def targets_text(distill: dict) -> str:
    """What the KD target is: the teacher's scores, or their fusion with the student's."""
    w = distill.get("teacher_weight", 1.0)
    return "the teacher's scores" if w >= 1.0 else f"{w} x teacher + {1 - w:g} x student (z-scored)"


def markdown(summary: dict) -> str:
    engine = summary["config"]["teacher"].get("engine", "transformers")
    lines = [
        f"# adapt report: {summary['run']}",
        "",
        f"- student: `{summary['student']}`",
        f"- teacher: `{summary['teacher']}` ({engine}); pointwise prompt "
        f"`{summary['pointwise_prompt']}`, pairwise `{summary['pairwise_prompt']}`; "
        f"distillation targets: {targets_text(summary['config']['distill'])}",
        f"- data: corpus `{summary['config']['data']['corpus']}`, queries "
        f"`{summary['config']['data']['queries']}` "
        f"(split: {summary['config']['data']['queries_split'] or 'all'}), qrels "
        f"`{summary['config']['data']['qrels']}`",
        "",
    ]
    evaluated = [r for r in summary["iterations"] if "metrics" in r]
    if evaluated:
        lines += [
            "| iteration | " + " | ".join(METRICS) + " | Δ nDCG@10 vs start (p, wins/losses) |",
            "|---" * (len(METRICS) + 2) + "|",
        ]
        for row in evaluated:
            cells = [f"{row['metrics'][m] * 100:.1f}" for m in METRICS]
            test = row.get("vs_start", {}).get("ndcg@10")
            versus = describe_test(test) if test else "start"
            name = "start" if row["iteration"] == 0 else str(row["iteration"])
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {versus} |")
        lines.append("")
    else:
        lines += ["No qrels were given: no metrics.", ""]
    for row in summary["iterations"]:
        tau = row.get("teacher_agreement", {}).get("teacher_student_tau")
        if tau is not None:
            lines.append(
                f"- iteration {row['iteration']}: teacher-student agreement (Kendall tau over the "
                f"candidates, no labels) {tau:.3f}"
                + (" **warning: the teacher looks like noise here**" if tau < NOISE_TAU else "")
            )
        if "train" in row or "teacher_diagnostics" in row:
            lines.append(
                f"- iteration {row['iteration']}: train {json.dumps(row.get('train'))}; "
                f"teacher diagnostics {json.dumps(row.get('teacher_diagnostics'))}"
            )
    if summary["timings_s"]:
        lines += [
            "",
            "Wall time per stage (s): "
            + ", ".join(f"{k} {v}" for k, v in summary["timings_s"].items()),
        ]
    return "\n".join(lines) + "\n"
