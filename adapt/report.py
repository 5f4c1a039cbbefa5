"""Per-run reports: `report.json` (everything) and `report.md` (the table people read)."""

import json
import statistics
from pathlib import Path

from adapt.config import Config
from adapt.evaluate import METRICS, SIGNIFICANT, describe_test, paired_test
from adapt.io import atomic_open, read_json, read_jsonl, write_json
from adapt.retriever.backend import index_in
from adapt.rundir import kept_on_disk
from adapt.stages.guard import START, read_check
from adapt.teacher.agreement import NOISE_TAU


def rounded(value, digits: int = 4):
    """Floats to `digits` significant digits, all the way down: reports are read, not
    re-computed from (per-query values stay in eval.json at full precision)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


def best_reference(references: list[dict]) -> dict | None:
    """The strongest of the baselines and the start by mean nDCG@10: what adaptation must beat.
    Each entry has `label`, `metrics` and `per_query`."""
    return max(references, key=lambda r: r["metrics"]["ndcg@10"], default=None)


def verdict(references: list[dict], adapted: list[dict]) -> list[str]:
    """The report's first lines: the last adapted student against each reference (baselines
    and start), saying plainly when it is worse, and which checkpoint (or baseline) to use.

    `adapted` entries are `references`-like with a `checkpoint` path, last iteration last."""
    if not adapted or not references:
        return []
    final = adapted[-1]
    below, above, level = [], [], []
    for ref in references:
        test = paired_test(ref["per_query"]["ndcg@10"], final["per_query"]["ndcg@10"])
        shown = f"{ref['label']} ({ref['metrics']['ndcg@10'] * 100:.1f}, {describe_test(test)})"
        if test["p_value"] < SIGNIFICANT:
            (below if test["delta"] < 0 else above).append(shown)
        else:
            level.append(shown)
    score = final["metrics"]["ndcg@10"] * 100
    lines = [f"**{final['label']}: nDCG@10 {score:.1f}.**"]
    if below:
        lines.append(f"**Worse than:** {'; '.join(below)} (paired t-test, p < {SIGNIFICANT}).")
    if above:
        lines.append(f"Better than: {'; '.join(above)}.")
    if not below and not above:
        lines.append("Not significantly different from the start or any baseline.")
    elif level:
        lines.append(f"Not significantly different from: {'; '.join(level)}.")
    best = max(references + adapted, key=lambda r: r["metrics"]["ndcg@10"])
    use = (
        f"`{best['checkpoint']}`"
        if "checkpoint" in best
        else f"{best['label']} (no checkpoint of this run beats it)"
    )
    lines.append(
        f"Best on these evaluation queries: {use}. (Chosen on the same queries it is scored on: "
        "confirm on held-out queries before trusting the margin.)"
    )
    return lines


def _hybrid(run_dir: Path, kind: str, references: list[dict], adapted: list[dict]) -> list[dict]:
    """Each evaluated student fused with BM25 (and the bi-encoder) at query time, with its
    paired test against the best row that is not hybrid: what fusion adds to what the user
    could take home without it."""
    plain = best_reference(references + adapted)
    start = next((r for r in references if r["name"] == "iteration 0"), None)
    rows = []
    for folder in _iterations(run_dir):
        if not (folder / "eval-hybrid.json").is_file():
            continue
        iteration = int(folder.name.split("-")[1])
        found = read_json(folder / "eval-hybrid.json")
        name = start_label(kind) if iteration == 0 else f"iteration {iteration}"
        row = {
            "iteration": iteration,
            "label": f"{name} + {found['signals']} (hybrid{_tuned(found['weights'])})",
            "metrics": found["metrics"],
            "weights": found["weights"],
            "per_query": found["per_query"],
        }
        if start is not None:
            row["vs_start"] = paired_test(
                start["per_query"]["ndcg@10"], found["per_query"]["ndcg@10"]
            )
        if plain is not None:
            row["vs_best_plain"] = {
                "reference": plain["label"],
                **paired_test(plain["per_query"]["ndcg@10"], found["per_query"]["ndcg@10"]),
            }
        rows.append(row)
    return rows


def _tuned(weights: dict[str, float]) -> str:
    """A hybrid row's weights when they are not equal (chosen on the label-free check).

    >>> _tuned({"student": 0.375, "bm25": 0.25, "biencoder": 0.375})
    ', BM25 weight 0.25'
    >>> _tuned({"student": 0.5, "bm25": 0.5, "biencoder": 0.0})
    ''
    """
    shares = {round(w, 6) for w in weights.values() if w > 0}
    return f", BM25 weight {weights['bm25']:.2g}" if len(shares) > 1 else ""


def take_home(references: list[dict], adapted: list[dict], hybrid: list[dict]) -> list[str]:
    """The retriever to take home, by these evaluation queries: the best row of all, and, when
    it is a hybrid, whether it beats the best one without fusion significantly."""
    rows = references + adapted + hybrid
    if not rows:
        return []
    best = max(rows, key=lambda r: r["metrics"]["ndcg@10"])
    line = f"Take home: **{best['label']}** (nDCG@10 {best['metrics']['ndcg@10'] * 100:.1f}"
    if "vs_best_plain" in best:
        test = best["vs_best_plain"]
        line += f"; {describe_test(test)} against {test['reference']}"
    return [line + "), by the evaluation queries."]


def _iterations(run_dir: Path) -> list[Path]:
    found = [p for p in run_dir.glob("iter-*") if p.name.split("-")[1].isdigit()]
    return sorted(found, key=lambda p: int(p.name.split("-")[1]))


def start_label(kind: str) -> str:
    """What the un-adapted student is called in tables, by `student.kind`."""
    return "dense start" if kind == "dense" else "ColBERT start"


def _evaluated(run_dir: Path, kind: str) -> tuple[list[dict], list[dict]]:
    """(references: the baselines and the start; adapted: each later iteration), each with its
    label, metrics and per-query values."""
    references = [
        {"name": p.stem, **read_json(p)} for p in sorted((run_dir / "baselines").glob("*.json"))
    ]
    adapted = []
    for folder in _iterations(run_dir):
        iteration = int(folder.name.split("-")[1])
        kept = [(f"step {s}", folder / f"step-{s}") for s in kept_on_disk(folder)]
        for name, at in [*kept, ("", folder)]:  # in training order, the iteration's last last
            if not (at / "eval.json").is_file():
                continue
            entry = {
                "name": f"iteration {iteration}" + (f", {name}" if name else ""),
                "label": start_label(kind)
                if iteration == 0
                else f"adapted, iteration {iteration}" + (f", {name}" if name else ""),
                "checkpoint": str(at / "checkpoint"),
                **read_json(at / "eval.json"),
            }
            (references if iteration == 0 else adapted).append(entry)
    return references, adapted


def _compared(evaluation: dict, start: dict | None, best: dict | None) -> dict:
    """A checkpoint's metrics and its paired tests against the start and the best reference."""
    row: dict = {"metrics": evaluation["metrics"]}
    if start is not None:
        row["vs_start"] = {
            m: paired_test(start["per_query"][m], evaluation["per_query"][m]) for m in METRICS
        }
    if best is not None:
        row["vs_best_reference"] = {
            "reference": best["label"],
            **paired_test(best["per_query"]["ndcg@10"], evaluation["per_query"]["ndcg@10"]),
        }
    return row


def build(run_dir: Path, config: Config | None = None) -> dict:
    """The summary at full precision (printed rounded once), and report.json rounded."""
    config_dict = config.to_dict() if config else read_json(run_dir / "config.json")
    references, adapted = _evaluated(run_dir, config_dict["student"].get("kind", "colbert"))
    start = next((r for r in references if r["name"] == "iteration 0"), None)
    best = best_reference(references)
    rows = []
    for folder in _iterations(run_dir):
        iteration = int(folder.name.split("-")[1])
        row: dict = {"iteration": iteration}
        if (folder / "eval.json").is_file():
            evaluation = read_json(folder / "eval.json")
            row.update(
                _compared(evaluation, start, best)
                if iteration
                else {"metrics": evaluation["metrics"]}
            )
        kept = [
            {"step": s, **_compared(read_json(folder / f"step-{s}" / "eval.json"), start, best)}
            for s in kept_on_disk(folder)
            if (folder / f"step-{s}" / "eval.json").is_file()
        ]
        if kept:
            row["kept"] = kept
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
    hybrid = _hybrid(run_dir, config_dict["student"].get("kind", "colbert"), references, adapted)
    summary = {
        "run": str(run_dir),
        "verdict": verdict(references, adapted) + take_home(references, adapted, hybrid),
        "hybrid": [{k: v for k, v in r.items() if k != "per_query"} for r in hybrid],
        "baselines": {
            r["name"]: {"label": r["label"], "metrics": r["metrics"], "wall_s": r["wall_s"]}
            for r in references
            if "checkpoint" not in r
        },
        "teacher": config_dict["teacher"]["model"],
        "pointwise_prompt": config_dict["teacher"]["pointwise_prompt"],
        "pairwise_prompt": config_dict["teacher"]["pairwise_prompt"],
        "student": config_dict["student"]["model"],
        "config": config_dict,
        "generated_queries": (
            read_json(run_dir / "generated" / "stats.json")
            if (run_dir / "generated" / "stats.json").is_file()
            else None
        ),
        "label_free_check": _check(run_dir),
        "iterations": rows,
        "timings_s": read_json(timings) if (timings := run_dir / "timings.json").is_file() else {},
    }
    write_json(run_dir / "report.json", rounded(summary))
    with atomic_open(run_dir / "report.md") as handle:
        handle.write(markdown(summary))
    return summary


def _check(run_dir: Path) -> dict | None:
    """The label-free check's call and means (guard/check.json), without per-query values."""
    path = run_dir / "guard" / "check.json"
    if not path.is_file():
        return None
    check = read_check(path)
    return {key: check[key] for key in ("queries", "checkpoints", "call", "reason") if key in check}


NAMES = {"student": "student", "bm25": "BM25", "biencoder": "bi-encoder"}


def check_lines(summary: dict) -> list[str]:
    """The label-free check as the report's second verdict: what a run without qrels has."""
    check = summary.get("label_free_check")
    if not check:
        return []
    if "call" not in check:
        return [f"No label-free check: {check['reason']}."]
    call, means = check["call"], check["checkpoints"]
    start, best = means[START]["ndcg@10"] * 100, means[call["checkpoint"]]["ndcg@10"] * 100
    checkpoint = Path(summary["run"]) / call["use"] / "checkpoint"
    use = f"the start, `{checkpoint}`" if call["use"] == START else f"`{checkpoint}`"
    adapted = (
        f"the best of {len(means) - 1} adapted checkpoints ({call['checkpoint']})"
        if len(means) > 2
        else "adapted"
    )
    lines = [
        f"Label-free check (it reads no qrels): on {check['queries']} queries the teacher wrote "
        f"for held-out passages, each one's own passage the relevant one, nDCG@10 start "
        f"{start:.1f}, {adapted} {best:.1f}, {describe_test(call)}: {call['outcome']}; it "
        f"recommends {use}."
    ]
    return lines + _fused_line(Path(summary["run"]), call["use"])


def _fused_line(run_dir: Path, use: str) -> list[str]:
    """How to search with the recommended checkpoint fused with BM25 (and the bi-encoder), with
    the weights the check chose for it."""
    chosen = run_dir / use / "hybrid-weights.json"
    found = index_in(run_dir / use)
    if not chosen.is_file() or found is None:
        return []
    weights = read_json(chosen)["weights"]
    shown = ", ".join(f"{name} {weights[n]:.2g}" for n, name in NAMES.items() if weights.get(n))
    signals = "BM25 and the bi-encoder" if weights.get("biencoder") else "BM25"
    how = (
        f"weighted as chosen on the same queries ({shown})"
        if _tuned(weights)
        else "at equal weights (no other weighting was significantly better on the same queries)"
    )
    return [
        f"To search with it fused with {signals}, {how}: `adapt search --checkpoint "
        f"{run_dir / use / 'checkpoint'} --index "
        f"{found} --hybrid {run_dir / 'hybrid'}` (what fusion adds on labelled sets: "
        'docs/benchmarks.md, "Hybrid search").'
    ]


def targets_text(distill: dict) -> str:
    """What the KD target is: the teacher's z-scores, or their fusion with the student's and
    BM25's (adapt/distill/targets.py)."""
    weights = {
        "teacher": distill.get("teacher_weight", 1.0),
        "BM25": distill.get("bm25_weight", 0.0),
        "bi-encoder": distill.get("biencoder_weight", 0.0),
    }
    if weights["teacher"] >= 1.0:
        return "the teacher's scores (z-scored per query)"
    weights["student"] = 1 - sum(weights.values())
    parts = [f"{w:.2g} x {name}" for name, w in weights.items() if w > 1e-9]
    return " + ".join(parts) + " (z-scored per query)"


def _finished(summary: dict) -> bool:
    """Whether the run did the last thing its config asks for: evaluate the last iteration (with
    qrels) or train it. A killed run is read as it stands, so say when it is not done."""
    config = summary["config"]
    last = config["iterations"]
    row = next((r for r in summary["iterations"] if r["iteration"] == last), {})
    if config["data"]["qrels"]:
        return "metrics" in row
    return last == 0 or "train" in row


def _no_metrics(summary: dict) -> str:
    if summary["config"]["data"]["qrels"]:
        return "No metrics yet: the run stopped before its first evaluation."
    return "No qrels were given: no metrics."


def _resume_note(summary: dict) -> list[str]:
    if _finished(summary):
        return []
    asked = summary["config"]["iterations"]
    return [f"**Incomplete** (iteration {asked} not done): rerun the same command to resume.", ""]


def _queries_text(summary: dict) -> str:
    data, written = summary["config"]["data"], summary.get("generated_queries")
    if data["queries"]:
        return f"`{data['queries']}` (split: {data['queries_split'] or 'all'})"
    if not written:
        return "to be written by the teacher (not yet)"
    return (
        f"written by the teacher for {written['passages']} sampled passages: {written['unique']} "
        f"unique, {written['kept']} kept ({written['share_kept'] * 100:.0f}%; "
        f"{written['filter']})"
    )


def markdown(summary: dict) -> str:
    engine = summary["config"]["teacher"].get("engine", "transformers")
    lines = [
        f"# adapt report: {summary['run']}",
        "",
        *(f"{line}  " for line in summary.get("verdict", []) + check_lines(summary)),
        "",
        f"- student: `{summary['student']}`",
        f"- teacher: `{summary['teacher']}` ({engine}); pointwise prompt "
        f"`{summary['pointwise_prompt']}`, pairwise `{summary['pairwise_prompt']}`; "
        f"distillation targets: {targets_text(summary['config']['distill'])}",
        f"- data: corpus `{summary['config']['data']['corpus']}`, queries "
        f"{_queries_text(summary)}, qrels `{summary['config']['data']['qrels']}`",
        "",
    ]
    evaluated = [r for r in summary["iterations"] if "metrics" in r]
    if evaluated:
        lines += [
            "| retriever | "
            + " | ".join(METRICS)
            + " | Δ nDCG@10 vs start (p, wins/losses) | Δ nDCG@10 vs best of baselines and start |",
            "|---" * (len(METRICS) + 3) + "|",
        ]
        for baseline in summary.get("baselines", {}).values():
            cells = [f"{baseline['metrics'][m] * 100:.1f}" for m in METRICS]
            lines.append(f"| {baseline['label']} | " + " | ".join(cells) + " | — | — |")
        start = start_label(summary["config"]["student"].get("kind", "colbert"))
        for row in evaluated:
            name = start if row["iteration"] == 0 else f"iteration {row['iteration']}"
            kept = [(f"{name}, step {k['step']}", k) for k in row.get("kept", [])]
            for label, shown in [*kept, (name, row)]:
                cells = [f"{shown['metrics'][m] * 100:.1f}" for m in METRICS]
                test = shown.get("vs_start", {}).get("ndcg@10")
                versus = describe_test(test) if test else "—"
                best = shown.get("vs_best_reference")
                against = f"{describe_test(best)} vs {best['reference']}" if best else "—"
                lines.append(f"| {label} | " + " | ".join(cells) + f" | {versus} | {against} |")
        for row in summary.get("hybrid", []):
            cells = [f"{row['metrics'][m] * 100:.1f}" for m in METRICS]
            test, plain = row.get("vs_start"), row.get("vs_best_plain")
            versus = describe_test(test) if test else "—"
            against = f"{describe_test(plain)} vs {plain['reference']}" if plain else "—"
            lines.append(f"| {row['label']} | " + " | ".join(cells) + f" | {versus} | {against} |")
        lines.append("")
    else:
        lines += [_no_metrics(summary), ""]
    lines += _resume_note(summary)
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
                f"- iteration {row['iteration']}: train {json.dumps(rounded(row.get('train')))}; "
                f"teacher diagnostics {json.dumps(rounded(row.get('teacher_diagnostics')))}"
            )
    if summary["timings_s"]:
        lines += [
            "",
            "Wall time per stage (s): "
            + ", ".join(f"{k} {rounded(v)}" for k, v in summary["timings_s"].items()),
        ]
    return "\n".join(lines) + "\n"


def compare(summaries: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Several runs' evaluated iterations side by side: a header and its rows."""
    rows = [
        [
            summary["run"],
            str(row["iteration"]),
            *(f"{row['metrics'][m] * 100:.1f}" for m in METRICS),
        ]
        for summary in summaries
        for row in summary["iterations"]
        if "metrics" in row
    ]
    return ["run", "iteration", *METRICS], rows
