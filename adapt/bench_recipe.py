"""A bench recipe: which methods (rows) run on which domains, each domain's config complete.

recipe = "demo.toml"            # student, teacher and distillation settings for every domain
methods = ["bm25", "biencoder", "start", "pairdistill", "kd", "teacher-rerank"]
                                # also: "labels" (the judgments as the teacher: what the
                                # trainer carries), "start+hybrid", "pairdistill+hybrid"
rerank_queries = 100            # evaluation queries the teacher reranks (seeded sample)
teacher_cache = "runs/bench-x"  # optional: another bench's folder (from the working directory)
[defaults]                      # recipe tables applied to every domain
[[domains]]
name = "scifact"
data = { corpus = "...", queries = "...", queries_split = "train", qrels = "..." }
like = "scifact"                # optional: reuse this domain's scores and start: one of
                                # teacher_cache's bench if set, else an earlier one of this
methods = ["start", "kd"]       # optional: this domain's rows, if not the bench's
"""

import copy
from dataclasses import dataclass, field
from pathlib import Path

from adapt.config import Config, apply_table, load_config, read_toml
from adapt.errors import InputError
from adapt.stages.baselines import LABELS as BASELINES

METHODS = (
    "bm25",
    "biencoder",
    "start",
    "pairdistill",
    "kd",
    "labels",
    "teacher-rerank",
    "start+hybrid",
    "pairdistill+hybrid",
)
LABELS = {
    **BASELINES,
    "start": "the start (no adaptation)",
    "kd": "+ L_KD only",
    "pairdistill": "+ L_KD + L_pair",
    "labels": "+ L_KD + L_pair, the labels teacher",
    "teacher-rerank": "teacher reranks the start's top-k",
    "start+hybrid": "the start + BM25 + bi-encoder (hybrid)",
    "pairdistill+hybrid": "+ L_KD + L_pair + BM25 + bi-encoder (hybrid)",
}
# The runs whose students a bench trains or evaluates; "X+hybrid" reads run X's hybrid rows.
ADAPTED = ("start", "kd", "pairdistill", "labels")


@dataclass
class Bench:
    name: str
    methods: list[str]
    rerank_queries: int
    domains: dict[str, Config]
    teacher_cache: str | None = None
    like: dict[str, str] = field(default_factory=dict)  # domain -> the domain it reuses
    rows: dict[str, list[str]] = field(default_factory=dict)  # domain -> its methods

    def methods_of(self, domain: str) -> list[str]:
        return self.rows.get(domain, self.methods)


def load_bench(path: Path) -> Bench:
    """Parse and check a bench recipe; every domain's config is complete after this."""
    values = read_toml(path, "bench recipe")
    known = {"name", "recipe", "methods", "rerank_queries", "teacher_cache", "defaults", "domains"}
    if unknown := set(values) - known:
        raise InputError(path, f"unknown key(s) {sorted(unknown)} (known: {sorted(known)})")
    methods = _methods(path, values.get("methods", list(METHODS)))
    domains = values.get("domains", [])
    if not domains:
        raise InputError(path, "no [[domains]]")
    base = load_config(path.parent / values["recipe"] if "recipe" in values else None)
    apply_table(base, values.get("defaults", {}), str(path), path.parent)
    configs: dict[str, Config] = {}
    like: dict[str, str] = {}
    rows: dict[str, list[str]] = {}
    for table in domains:
        table = dict(table)
        name = table.pop("name", None)
        like[name] = table.pop("like", name)
        if not values.get("teacher_cache"):
            if like[name] not in [*configs, name]:
                raise InputError(
                    path, f"domain {name}: like = {like[name]!r} names no earlier domain"
                )
            like[name] = like.get(like[name], like[name])  # a chain ends where the scores are
        if "methods" in table:
            rows[name] = _methods(path, table.pop("methods"))
        if not name or name in configs:
            raise InputError(path, f"each domain needs a unique name (got {name!r})")
        config = copy.deepcopy(base)
        config.name = name
        apply_table(config, table, f"{path} (domain {name})", path.parent)
        if not config.data.qrels:
            raise InputError(path, f"domain {name}: a bench needs qrels to evaluate")
        configs[name] = config
    return Bench(
        values.get("name", path.stem),
        methods,
        values.get("rerank_queries", 0),
        configs,
        values.get("teacher_cache"),
        like,
        rows,
    )


def _methods(path: Path, methods: list[str]) -> list[str]:
    if bad := [m for m in methods if m not in METHODS]:
        raise InputError(path, f"unknown method(s) {bad} (known: {', '.join(METHODS)})")
    return methods
