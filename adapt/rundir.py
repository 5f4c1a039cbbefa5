"""A run directory: its config, a lock against concurrent runs, and which stages are complete.

A stage is complete when its output exists and the fingerprint recorded for it matches the one
computed now (config sections it depends on plus its inputs' fingerprints). Outputs are written
atomically, so after a kill a stage is either complete or absent, and rerunning resumes.
"""

import dataclasses
import fcntl
import json
from pathlib import Path
from typing import Any

from adapt.config import NEUTRAL, Config
from adapt.errors import AdaptError
from adapt.io import atomic_open, read_json, write_json

# Settings a run may change between invocations without --force: more iterations continue a run
# (no stage depends on the count), fewer stop it early; the label-free check is the last stage and
# its record re-runs it alone; where the teacher runs (a Ray cluster or not) changes no output.
CONTINUABLE = {"iterations", "generate.check_queries", "teacher.ray_address", "teacher.ray_actors"}
# Sections only the teacher's stages (generated queries, iteration 1 on) read: the start, its
# index, evaluation and baselines are the same whatever they say.
DISTILL_ONLY = {"teacher", "distill", "generate"}


def to_toml(values: dict[str, Any]) -> str:
    """Enough TOML for a Config: scalars first, then one table per nested section."""
    lines, tables = [], []
    for key, value in values.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{key} = {json.dumps(value)}")
    for name, table in tables:
        lines.append(f"\n[{name}]")
        lines.extend(f"{k} = {json.dumps(v)}" for k, v in table.items() if v is not None)
    return "\n".join(lines) + "\n"


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


class RunDir:
    def __init__(self, path: Path, config: Config, force: bool = False) -> None:
        self.path = path
        self.config = config
        path.mkdir(parents=True, exist_ok=True)
        self._lock_handle = (path / ".lock").open("w")
        try:
            fcntl.flock(self._lock_handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AdaptError(f"{path}: another adapt process is using this run directory") from None
        stages = path / "stages.json"
        self.stages: dict[str, str] = read_json(stages) if stages.is_file() else {}
        self._check_config(force)

    def _check_config(self, force: bool) -> None:
        saved = self.path / "config.json"
        current = self.config.to_dict()
        if saved.is_file() and read_json(saved) != current:
            old, new = _flatten(read_json(saved)), _flatten(current)
            # A setting that did not exist when the run began had its neutral value then.
            old = {**NEUTRAL, **old}
            changed = sorted(
                k
                for k in old.keys() | new.keys()
                if old.get(k) != new.get(k) and k not in CONTINUABLE and k not in self._unread()
            )
            if changed and not force and self._would_overwrite(changed):
                raise AdaptError(
                    f"{self.path}: config differs from the run's ({', '.join(changed)}); "
                    "for other data or another experiment, give another --run-dir; --force "
                    "re-runs the affected stages in this directory, overwriting its results"
                )
        write_json(saved, current)
        with atomic_open(self.path / "config.toml") as handle:
            handle.write(to_toml(current))

    def _unread(self) -> set[str]:
        """[generate] in a run with queries: nothing is written for adaptation there, and the
        label-free check's stage records hold what it reads of the section (a change re-runs
        the check alone), so a changed default never blocks resuming such a run."""
        if not self.config.data.queries:
            return set()
        return {f"generate.{f.name}" for f in dataclasses.fields(self.config.generate)}

    def _would_overwrite(self, changed: list[str]) -> bool:
        """Whether a finished stage reads a changed setting. A run that failed before its first
        teacher stage (a mistyped teacher, say) then never blocks the corrected command."""
        if all(key.split(".")[0] in DISTILL_ONLY for key in changed):
            return any(not stage.startswith("iter-0/") for stage in self.stages)
        return bool(self.stages)

    def done(self, output: Path, fingerprint: str) -> bool:
        key = str(output.relative_to(self.path))
        return output.exists() and self.stages.get(key) == fingerprint

    def mark(self, output: Path, fingerprint: str) -> None:
        self.stages[str(output.relative_to(self.path))] = fingerprint
        write_json(self.path / "stages.json", self.stages)

    def close(self) -> None:
        fcntl.flock(self._lock_handle, fcntl.LOCK_UN)
        self._lock_handle.close()


def kept_on_disk(folder: Path) -> list[int]:
    """The steps an iteration's folder holds a kept checkpoint of (`step-S/checkpoint`)."""
    found = [p.parent.name.removeprefix("step-") for p in folder.glob("step-*/checkpoint")]
    return sorted(int(s) for s in found if s.isdigit())
