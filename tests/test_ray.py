"""The teacher on a real local Ray cluster (a head and two worker nodes of one CPU, the SmolLM2
teacher in fp32): the same bits as the local engine, for every kind of prompt, with the work
spread over both workers."""

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import ray

from adapt.config import TeacherConfig
from adapt.data import Document, Query
from adapt.teacher import generation
from adapt.teacher.cache import ScoreCache
from adapt.teacher.ray_engine import RayTeacher
from adapt.teacher.scoring import TeacherScorer
from adapt.teacher.templates import load_template
from tests.conftest import WORDS

pytestmark = pytest.mark.usefixtures("one_thread")  # the local engine at the actors' one thread


@contextlib.contextmanager
def local_cluster() -> Iterator:
    """A head that runs no work and two worker nodes of one CPU each, this process connected.
    Its processes inherit this one's environment (offline hub, the adapt cache)."""
    from ray.cluster_utils import Cluster

    small = {"object_store_memory": 80 * 2**20}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **small}
    )
    for _ in range(2):
        cluster.add_node(num_cpus=1, **small)
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def teacher_settings(address: str, **settings) -> TeacherConfig:
    """The conftest's `smol_backend` (fp32, batches of 4), on the cluster at `address`."""
    return TeacherConfig(
        model="smollm2-135m", dtype="float32", batch_size=4, ray_address=address, **settings
    )


@pytest.fixture(scope="module")
def teacher() -> Iterator[RayTeacher]:
    with local_cluster() as cluster:
        pool = RayTeacher(teacher_settings(cluster.address))
        yield pool
        pool.close()


def documents(n: int) -> list[Document]:
    """Passages of different lengths, so that the units differ in width."""
    return [Document(f"d{i}", " ".join(WORDS[i % 7 : i % 7 + 3 + i % 11])) for i in range(n)]


QUERY = Query("q", "how do i sort a list")


@pytest.mark.parametrize("prompt", ["yes-no", "query-likelihood"])
def test_pointwise_scores_on_ray_are_the_local_engines_bits(
    teacher, smol_backend, tmp_path, prompt
):
    items = [(QUERY, d) for d in documents(24)]
    template = load_template(prompt)
    before = sum(teacher.served)
    on_ray = TeacherScorer(teacher, ScoreCache(tmp_path / "ray.sqlite"), template)
    here = TeacherScorer(smol_backend, ScoreCache(tmp_path / "here.sqlite"), template)
    assert np.array_equal(on_ray.score_pointwise(items), here.score_pointwise(items))
    assert on_ray.computed == len(items) and len(ScoreCache(tmp_path / "ray.sqlite")) == len(items)
    assert sum(teacher.served) > before
    # The same key: a score from the cluster is found by a run without it, and the reverse.
    assert teacher.fingerprint == smol_backend.fingerprint


def test_pair_scores_on_ray_are_the_local_engines_bits(teacher, smol_backend, tmp_path):
    docs = documents(9)
    items = [(QUERY, a, b) for a, b in zip(docs, docs[1:])]
    ab = load_template("ab")
    on_ray = TeacherScorer(teacher, ScoreCache(tmp_path / "ray.sqlite"), None, ab)
    here = TeacherScorer(smol_backend, ScoreCache(tmp_path / "here.sqlite"), None, ab)
    assert on_ray.score_pairs(items) == here.score_pairs(items)
    assert on_ray.computed == 2 * len(items)  # both orders


def test_written_queries_on_ray_are_the_local_engines_and_both_workers_write(
    teacher, smol_backend, tmp_path
):
    """Two batches of 4 (each with its own seed), one for each worker."""
    template = load_template("generate-question", "generate")
    docs = documents(8)
    served = list(teacher.served)
    on_ray = TeacherScorer(teacher, ScoreCache(tmp_path / "ray.sqlite"), None)
    here = TeacherScorer(smol_backend, ScoreCache(tmp_path / "here.sqlite"), None)
    written = generation.generate(on_ray, template, docs, 0.8, 0)
    assert written == generation.generate(here, template, docs, 0.8, 0)
    assert any(row["text"] for row in written)
    assert [now - then for now, then in zip(teacher.served, served)] == [1, 1]


def test_a_run_moves_on_and_off_a_cluster_without_force(tmp_path):
    """Where the teacher runs is no method setting: a run begun here (even before the setting
    existed) resumes on a cluster, and no stage's record changes."""
    from adapt.config import Config
    from adapt.io import write_json
    from adapt.rundir import RunDir

    config = Config()
    older = config.to_dict()
    del older["teacher"]["ray_address"], older["teacher"]["ray_actors"]
    write_json(tmp_path / "config.json", older)
    write_json(tmp_path / "stages.json", {"iter-1/pointwise.jsonl": "fp"})  # a teacher stage
    here = config.fingerprint("teacher")
    config.teacher.ray_address, config.teacher.ray_actors = "auto", 2
    RunDir(tmp_path, config)._lock_handle.close()
    assert config.fingerprint("teacher") == here
