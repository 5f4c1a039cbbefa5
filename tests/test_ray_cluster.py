"""Whole commands on a real local Ray cluster (a head and two one-CPU worker nodes, the SmolLM2
teacher): `adapt run` gives the report it gives without Ray; an actor killed, a worker node lost
or the driver killed mid-stage loses no score and stores none twice."""

import json
import os
import signal
import time

import numpy as np
import pytest
import ray

from adapt.data import Query
from adapt.teacher.cache import ScoreCache
from adapt.teacher.ray_engine import RayTeacher
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template
from tests.conftest import N_HITS, N_QUERIES, tiny_student
from tests.test_kill import _score, kill_after_first_commit, run_args, score_args
from tests.test_ray import documents, local_cluster, teacher_settings

# Each loads the teacher on both workers: CI runs them (-m slow). The local engine runs at the
# actors' one thread.
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def cluster():
    with local_cluster() as cluster:
        yield cluster


def whereabouts(teacher: RayTeacher) -> list[tuple[int, str]]:
    """(process id, node id) of each actor, once its teacher is loaded (again, if restarting)."""

    def where(actor) -> tuple[int, str]:
        while True:
            try:
                return ray.get(actor.handle.__ray_call__.remote(lambda _: (os.getpid(), node())))
            except ray.exceptions.ActorUnavailableError:
                time.sleep(1)

    def node() -> str:
        return ray.get_runtime_context().get_node_id()

    return [where(actor) for actor in teacher.pool]


def score_while(teacher: RayTeacher, fault, tmp_path) -> tuple[TeacherScorer, np.ndarray, dict]:
    """40 Yes/No prompts in 10 units of 4 on `teacher`; `fault(actor index)` strikes the first
    actor that holds a call once the first unit is in. What it found: `held`, the calls the
    struck actor held."""
    items = [(Query("q", "how do i sort a list"), d) for d in documents(40)]
    scorer = TeacherScorer(teacher, ScoreCache(tmp_path / "ray.sqlite"), load_template("yes-no"))
    struck: dict = {}

    def progress(n: int) -> None:
        if n and not struck:
            index = next(i for i, actor in enumerate(teacher.pool) if actor.busy)
            struck.update(index=index, held=teacher.pool[index].busy)
            fault(index)

    return scorer, scorer.score_pointwise(items, progress), struck


def local_scores(smol_backend, tmp_path) -> np.ndarray:
    items = [(Query("q", "how do i sort a list"), d) for d in documents(40)]
    template = load_template("yes-no")
    here = TeacherScorer(smol_backend, ScoreCache(tmp_path / "here.sqlite"), template)
    return here.score_pointwise(items)


def test_an_actor_killed_mid_stage_is_restarted_and_loses_no_score(cluster, smol_backend, tmp_path):
    teacher = RayTeacher(teacher_settings(cluster.address))
    try:
        before = whereabouts(teacher)
        scorer, scores, struck = score_while(
            teacher, lambda i: os.kill(before[i][0], signal.SIGKILL), tmp_path
        )
        assert struck["held"] > 0  # it died holding calls, which other actors then answered
        assert np.array_equal(scores, local_scores(smol_backend, tmp_path))
        # Every prompt stored once: ten units answered, 40 scores committed, 40 rows.
        assert sum(teacher.served) == 10
        assert scorer.computed == 40 and len(ScoreCache(tmp_path / "ray.sqlite")) == 40
        # Ray restarted the actor: a new process, on the same node, with the teacher loaded.
        after = whereabouts(teacher)[struck["index"]]
        assert after[0] != before[struck["index"]][0]
    finally:
        teacher.close()


def test_a_worker_node_lost_mid_stage_loses_no_score(cluster, smol_backend, tmp_path):
    teacher = RayTeacher(teacher_settings(cluster.address))
    nodes = {node.node_id: node for node in cluster.worker_nodes}
    try:
        where = whereabouts(teacher)
        scorer, scores, struck = score_while(
            teacher, lambda i: cluster.remove_node(nodes[where[i][1]]), tmp_path
        )
        assert struck["held"] > 0
        # The lost actor has no node to restart on: the other one scored the rest.
        assert np.array_equal(scores, local_scores(smol_backend, tmp_path))
        assert sum(teacher.served) == 10
        assert scorer.computed == 40 and len(ScoreCache(tmp_path / "ray.sqlite")) == 40
    finally:
        teacher.close()
        cluster.add_node(num_cpus=1, object_store_memory=80 * 2**20)  # the next test's


def test_the_driver_killed_mid_stage_then_restarted_scores_only_what_is_missing(
    cli, cluster, short_inputs, tmp_path
):
    total = N_QUERIES * N_HITS
    cache = tmp_path / "cache.sqlite"
    on_ray = ["--ray-address", cluster.address]
    command = [*_score(short_inputs, tmp_path / "killed.jsonl", cache), *on_ray]
    stored = kill_after_first_commit(command, cache, total)

    resumed = cli(*score_args(short_inputs, tmp_path / "resumed.jsonl", cache), *on_ray)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{total - stored} new, {stored} from the cache" in " ".join(resumed.stderr.split())
    here = cli(*score_args(short_inputs, tmp_path / "here.jsonl", tmp_path / "here.sqlite"))
    assert here.returncode == 0, here.stderr
    assert (tmp_path / "resumed.jsonl").read_text() == (tmp_path / "here.jsonl").read_text()


def test_a_run_on_ray_gives_the_report_of_the_run_without_it(
    cli, cluster, tiny_beir, tiny_bert, tmp_path
):
    """A corpus-only run with A/B pairs: every teacher stage (written queries, query
    likelihood, pairs, the label-free check's queries) on the cluster, then the same run here."""
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(
        f"""iterations = 1
[data]
corpus = "{tiny_beir}"
qrels = "{tiny_beir / "qrels" / "test.tsv"}"
eval_queries = "{tiny_beir}"
{tiny_student(tiny_bert)}[teacher]
model = "smollm2-135m"
dtype = "float32"
batch_size = 4
pairwise_prompt = "ab"
[generate]
queries = 6
check_queries = 2
[distill]
top_k = 3
nway = 3
n_pairs = 2
delta = 3
"""
    )
    ray_run, here_run = tmp_path / "ray", tmp_path / "here"
    done = cli(*run_args(recipe, ray_run), "--ray-address", cluster.address)
    assert done.returncode == 0, done.stderr
    assert "teacher on Ray" in done.stderr
    done = cli(*run_args(recipe, here_run))
    assert done.returncode == 0, done.stderr
    for name in ("generated/written.jsonl", "iter-1/pointwise.jsonl", "iter-1/pairs.jsonl"):
        assert (ray_run / name).read_text() == (here_run / name).read_text(), name

    def report(run) -> dict:
        """The report less what names the run or times it."""
        summary = json.loads((run / "report.json").read_text())
        for key in ("run", "config", "timings_s"):
            summary.pop(key)
        for baseline in summary["baselines"].values():
            baseline.pop("wall_s")
        summary["generated_queries"].pop("queries_per_s")
        return summary

    assert report(ray_run) == report(here_run)


def test_the_teachers_actors_end_before_training(cluster, tiny_beir, tiny_bert, tmp_path):
    """On one node the driver trains where an actor holds the GPU: the actors end first. The
    pipeline is still alive here, so only that release can have freed the workers' CPUs."""
    from rich.console import Console

    from adapt import pipeline
    from tests.test_pipeline import _config

    config = _config(tiny_beir, tiny_bert)
    config.iterations, config.teacher.pairwise_prompt = 1, "from-pointwise"
    config.teacher.ray_address = cluster.address
    run = pipeline.Pipeline(config, tmp_path / "run", Console(quiet=True))
    run.run_all()
    assert (tmp_path / "run" / "iter-1" / "checkpoint").is_dir()
    assert ray.available_resources().get("CPU") == 2
