"""Targets, pair sampling, distillation losses and the student's training loop."""

from adapt.config import DistillConfig
from adapt.errors import AdaptError


def check_distill(d: DistillConfig) -> None:
    """Every distillation number that can be wrong, before any work (not after indexing)."""
    from adapt.distill.targets import Weights

    for name, least in (
        ("top_k", 1),
        ("nway", 2),
        ("delta", 2),
        ("n_pairs", 0),
        ("epochs", 1),
        ("checkpoints", 1),
    ):
        if getattr(d, name) < least:
            raise AdaptError(f"distill.{name} = {getattr(d, name)}: it must be at least {least}")
    for name in ("batch_size", "lr", "temperature"):
        if getattr(d, name) <= 0:
            raise AdaptError(f"distill.{name} = {getattr(d, name)}: it must be positive")
    for name in ("lambda_cl", "lambda_ib"):
        if getattr(d, name) < 0:
            raise AdaptError(f"distill.{name} = {getattr(d, name)}: it must be 0 (off) or more")
    if d.steps < 0:
        raise AdaptError(f"distill.steps = {d.steps}: it must be 0 (use epochs) or more")
    for name, allowed in (
        ("schedule", ("linear", "constant")),
        ("student_scores", ("raw", "zscore")),
    ):
        if getattr(d, name) not in allowed:
            raise AdaptError(
                f"distill.{name} = {getattr(d, name)!r}: choose one of {', '.join(allowed)}"
            )
    Weights(d.teacher_weight, d.bm25_weight, d.biencoder_weight)
