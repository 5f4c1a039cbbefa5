"""The bench report: one table per domain (every method against the ColBERT start, with a paired
t-test and the wall time), as JSON, markdown and a self-contained HTML page with plots."""

import base64
import html
import io
from pathlib import Path

from adapt.bench_recipe import ADAPTED, LABELS, Bench
from adapt.evaluate import METRICS, describe_test, paired_test
from adapt.io import atomic_open, read_json, read_jsonl, write_json
from adapt.report import best_reference, start_label, targets_text, verdict

REFERENCES = ("bm25", "biencoder", "start")  # what a user has without adapt


def _stage_seconds(run_dir: Path, last_iteration: int) -> float:
    timings = read_json(run_dir / "timings.json") if (run_dir / "timings.json").is_file() else {}
    return round(
        sum(v for k, v in timings.items() if 0 < int(k.split("/")[0][5:]) <= last_iteration), 3
    )


def _rows(domain: Path, methods: list[str], kind: str) -> list[dict]:
    rows = []
    for method in methods:
        run = method.removesuffix("+hybrid")  # a hybrid row reads its run's eval-hybrid.json
        folder, stored = domain / run, "eval.json" if run == method else "eval-hybrid.json"
        if run in ADAPTED:
            iterations = sorted(
                int(p.parent.name[5:])
                for p in folder.glob(f"iter-*/{stored}")
                if p.parent.name[5:].isdigit()
            )
            for n in iterations:
                if (run == "start") != (n == 0):
                    continue
                evaluation = read_json(folder / f"iter-{n}" / stored)
                timings = (
                    read_json(folder / "timings.json")
                    if (folder / "timings.json").is_file()
                    else {}
                )
                row = {
                    "method": method if run == "start" else f"{method}@{n}",
                    "label": start_label(kind)
                    if method == "start"
                    else LABELS[method]
                    if run == "start"
                    else f"{LABELS[method]}, iteration {n}",
                    "metrics": evaluation["metrics"],
                    "per_query": evaluation["per_query"],
                    "wall_s": round(sum(timings.values()), 3)
                    if run == "start"
                    else _stage_seconds(folder, n),
                }
                if run == method:  # a student alone: a checkpoint to take home
                    row["checkpoint"] = str(folder / f"iter-{n}" / "checkpoint")
                rows.append(row)
        elif (folder / "result.json").is_file():
            result = read_json(folder / "result.json")
            rows.append(
                {
                    "method": method,
                    "label": LABELS[method],
                    "metrics": result["metrics"],
                    "per_query": result["per_query"],
                    "wall_s": result["wall_s"],
                    "settings": result["settings"],
                }
            )
    start = next((r for r in rows if r["method"] == "start"), None)
    best = best_reference([r for r in rows if r["method"] in REFERENCES])
    # A hybrid row is tested against the best row without fusion, adapted ones included.
    plain = best_reference([r for r in rows if "+hybrid" not in r["method"]])
    for row in rows:
        row["queries"] = len(row["per_query"]["ndcg@10"])
        if start and row is not start:
            row["vs_start"] = {
                m: paired_test(start["per_query"][m], row["per_query"][m]) for m in METRICS
            }
        against = plain if "+hybrid" in row["method"] else best
        if against and row["method"] not in REFERENCES:
            row["vs_best_reference"] = {
                "reference": against["label"],
                **paired_test(against["per_query"]["ndcg@10"], row["per_query"]["ndcg@10"]),
            }
    return rows


def _verdict(rows: list[dict]) -> list[str]:
    """The domain's first lines: its last adapted row against the baselines and the start."""
    adapted = [r for r in rows if r["method"].startswith("pairdistill@")]
    return verdict([r for r in rows if r["method"] in REFERENCES], adapted[-1:])


def _diagnostics(domain: Path) -> dict:
    """Training losses and teacher diagnostics of the adapted runs, per iteration."""
    found: dict = {"loss": {}, "teacher": {}}
    for method in ("pairdistill", "kd"):
        for log in sorted((domain / method).glob("iter-*/train-log.jsonl")):
            found["loss"][f"{method}@{log.parent.name[5:]}"] = [r["loss"] for r in read_jsonl(log)]
    for path in sorted((domain / "pairdistill").glob("iter-*/pointwise-diagnostics.json")):
        entry = dict(read_json(path))
        pairs = path.parent / "teacher-diagnostics.json"
        if pairs.is_file():
            entry.update({f"pairs_{k}": v for k, v in read_json(pairs).items()})
        found["teacher"][f"iteration {path.parent.name[5:]}"] = entry
    return found


def build(out: Path, bench: Bench) -> dict:
    domains = {}
    for name, config in bench.domains.items():
        rows = _rows(out / name, bench.methods_of(name), config.student.kind)
        domains[name] = {
            "config": config.to_dict(),
            "verdict": _verdict(rows),
            "rows": rows,
            **_diagnostics(out / name),
        }
    summary = {"bench": bench.name, "methods": bench.methods, "domains": domains}
    write_json(out / "report.json", summary)
    with atomic_open(out / "report.md") as handle:
        handle.write(markdown(summary))
    with atomic_open(out / "report.html") as handle:
        handle.write(page(summary))
    return summary


def _versus(row: dict) -> str:
    test = row.get("vs_start", {}).get("ndcg@10")
    if not test:
        return "—"
    return describe_test(test)


def _versus_best(row: dict) -> str:
    test = row.get("vs_best_reference")
    return f"{describe_test(test)} vs {test['reference']}" if test else "—"


def _table(domain: dict) -> list[list[str]]:
    header = [
        "method",
        *METRICS,
        "Δ nDCG@10 vs start (p, wins/losses)",
        "Δ nDCG@10 vs best of baselines and start (a hybrid: vs the best row without fusion)",
        "queries",
        "wall s",
    ]
    body = [
        [
            row["label"],
            *(f"{row['metrics'][m] * 100:.1f}" for m in METRICS),
            _versus(row),
            _versus_best(row),
            str(row["queries"]),
            f"{row['wall_s']:.0f}",
        ]
        for row in domain["rows"]
    ]
    return [header, *body]


def _describe(config: dict) -> str:
    t, d, data = config["teacher"], config["distill"], config["data"]
    return (
        f"student `{config['student']['model']}`, teacher `{t['model']}` "
        f"({t['pointwise_prompt']} / {t['pairwise_prompt']}), top-{d['top_k']}, "
        f"{d['n_pairs']} pairs (delta {d['delta']}), lambda_pair {d['lambda_pair']}, "
        f"targets: {targets_text(d)}, lr {d['lr']}, {config['iterations']} iterations; "
        f"adaptation queries: split {data['queries_split'] or 'all'}"
        + (f", sample of {data['max_queries']}" if data["max_queries"] else "")
        + f"; evaluation: {data['qrels']} ({data['eval_split'] or 'all judged queries'})"
    )


def markdown(summary: dict) -> str:
    lines = [f"# adapt bench: {summary['bench']}", ""]
    for name, domain in summary["domains"].items():
        lines += [f"## {name}", "", *(f"{v}  " for v in domain["verdict"]), ""]
        lines += [_describe(domain["config"]), ""]
        table = _table(domain)
        lines.append("| " + " | ".join(table[0]) + " |")
        lines.append("|---" * len(table[0]) + "|")
        lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
        for label, entry in domain["teacher"].items():
            lines.append(
                f"- teacher, {label}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in entry.items())
            )
        lines.append("")
    lines.append(
        "Wall time: the start's row includes fitting its head, indexing and evaluating; adapted "
        "rows count their own stages up to that iteration (the shared start excluded)."
    )
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _figure_png(draw) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3.2), dpi=110)
    draw(axis)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(domain: dict) -> list[tuple[str, str]]:
    rows = domain["rows"]
    plots = []

    def bars(axis):
        full = max(r["queries"] for r in rows)
        labels = [
            r["method"] + ("" if r["queries"] == full else f" ({r['queries']} q)") for r in rows
        ]
        values = [r["metrics"]["ndcg@10"] * 100 for r in rows]
        colours = ["#c44e52" if r["method"] == "start" else "#4c72b0" for r in rows]
        axis.barh(labels, values, color=colours)
        for y, v in enumerate(values):
            axis.text(v, y, f" {v:.1f}", va="center", fontsize=8)
        axis.invert_yaxis()
        axis.set_xlabel("nDCG@10")

    plots.append(("nDCG@10 per method", _figure_png(bars)))
    if domain["loss"]:

        def losses(axis):
            for label, values in domain["loss"].items():
                axis.plot(range(1, len(values) + 1), values, label=label)
            axis.set_xlabel("step")
            axis.set_ylabel("training loss")
            axis.legend(fontsize=8)

        plots.append(("training loss", _figure_png(losses)))
    taus = {k: v.get("teacher_student_tau") for k, v in domain["teacher"].items()}
    if any(v is not None for v in taus.values()):

        def agreement(axis):
            names = [k for k, v in taus.items() if v is not None]
            axis.bar(names, [taus[k] for k in names], color="#55a868")
            axis.axhline(0.05, color="grey", linestyle="--", linewidth=1)
            axis.set_ylabel("teacher-student Kendall tau")

        plots.append(
            ("teacher diagnostics (label-free; dashed: noise warning)", _figure_png(agreement))
        )
    return plots


def page(summary: dict) -> str:
    """One HTML file with its images inline: it opens anywhere and can be mailed as is."""
    parts = [
        "<!doctype html><meta charset=utf-8>",
        f"<title>adapt bench: {html.escape(summary['bench'])}</title>",
        "<style>body{font:14px system-ui,sans-serif;max-width:980px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;"
        "text-align:right}td:first-child,th:first-child{text-align:left}</style>",
        f"<h1>adapt bench: {html.escape(summary['bench'])}</h1>",
    ]
    for name, domain in summary["domains"].items():
        parts.append(
            f"<h2>{html.escape(name)}</h2>"
            + "".join(f"<p>{html.escape(v.replace('**', ''))}</p>" for v in domain["verdict"])
            + f"<p>{html.escape(_describe(domain['config']))}</p>"
        )
        table = _table(domain)
        parts.append(
            "<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in table[0]) + "</tr>"
        )
        for row in table[1:]:
            parts.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        parts.append("</table>")
        for title, image in _plots(domain):
            title = html.escape(title)
            parts.append(f"<h3>{title}</h3><img alt='{title}' src='data:image/png;base64,{image}'>")
    return "\n".join(parts) + "\n"
