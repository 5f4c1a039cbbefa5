"""Device placement (adapt/device.py): the one rule, its early errors, and each stage computing
on the student's device. CPU only: a GPU is imitated where only the rule is under test, and
torch's "meta" device stands in for "not the CPU" where a stage must follow its inputs."""

import pytest
import torch

from adapt import precision
from adapt.config import Config, DistillConfig, StudentConfig, TeacherConfig
from adapt.data import Document, Query
from adapt.device import autocast, resolve
from adapt.distill.train import Example, _losses
from adapt.errors import AdaptError
from adapt.retriever import student
from adapt.retriever.index import ExactIndex
from adapt.retriever.student import check_student, load_student
from adapt.teacher.backends import check_teacher
from tests.conftest import DOCS, QUERIES


@pytest.fixture()
def no_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture()
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("LOCAL_RANK", raising=False)


def _one_line_error(name: str) -> str:
    with pytest.raises(AdaptError) as err:
        resolve(name, "student.device")
    message = str(err.value)
    assert "\n" not in message and f"student.device = '{name}'" in message
    return message


def test_auto_is_the_cpu_without_cuda(no_gpu):
    assert resolve("auto") == torch.device("cpu")
    assert resolve("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "auto-ish", "gpu", "cuda:x", ""])
def test_a_device_that_is_missing_or_garbage_is_a_one_line_error(no_gpu, name):
    _one_line_error(name)


def test_auto_and_cuda_place_the_process_by_local_rank(two_gpus, monkeypatch):
    assert resolve("auto") == resolve("cuda") == torch.device("cuda", 0)
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve("auto") == torch.device("cuda", 1)
    # CUDA_VISIBLE_DEVICES narrowed a shard run to fewer GPUs than ranks: wrap, never overflow.
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert resolve("cuda") == torch.device("cuda", 1)
    assert resolve("cuda:0") == torch.device("cuda", 0)
    assert "sees 2 CUDA devices" in _one_line_error("cuda:2")


def test_autocast_follows_the_students_dtype(monkeypatch):
    model = torch.nn.Linear(2, 2)
    with autocast(model):  # no dtype set: fp32
        assert not torch.is_autocast_enabled("cpu")
    model.compute_dtype = torch.bfloat16
    with autocast(model):
        assert (model(torch.ones(1, 2))).dtype == torch.bfloat16
    assert model.weight.dtype == torch.float32  # the master weights stay fp32


def test_auto_is_bf16_on_chips_with_bf16_units_and_fp32_elsewhere(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert precision.student_dtype("auto", torch.device("cpu")) == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2"})  # bf16 emulated: 5x slower
    assert precision.student_dtype("auto", torch.device("cpu")) == torch.float32
    assert precision.student_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    for capability, expected in (((8, 0), torch.bfloat16), ((7, 0), torch.float32)):  # A100, V100
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None, c=capability: c)
        assert precision.student_dtype("auto", torch.device("cuda", 0)) == expected


def test_bad_devices_fail_the_settings_checks(no_gpu):
    with pytest.raises(AdaptError, match="student.device = 'cuda'"):
        check_student(StudentConfig(device="cuda"))
    with pytest.raises(AdaptError, match="teacher.device = 'cuda:1'"):
        check_teacher(TeacherConfig(device="cuda:1"))


def test_the_device_does_not_change_stage_fingerprints():
    """A run folder resumes on another machine: where the student ran is not what it computed."""
    on_gpu = Config()
    on_gpu.student.device = on_gpu.teacher.device = "cuda:1"
    assert on_gpu.fingerprint("student", "teacher") == Config().fingerprint("student", "teacher")


def _student(tiny_bert, device: str, kind: str = "colbert", dtype: str = "float32"):
    settings = StudentConfig(
        str(tiny_bert), kind, dim=16, query_maxlen=12, doc_maxlen=16, device=device, dtype=dtype
    )
    return load_student(settings)


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_load_student_places_the_student_on_its_device(tiny_bert, kind, monkeypatch):
    model = _student(tiny_bert, "cpu", kind)
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    # A device that is not where weights load (the CPU) shows the move itself.
    monkeypatch.setattr(student, "resolve", lambda name, setting: torch.device("meta"))
    model = _student(tiny_bert, "cuda", kind)
    assert {p.device.type for p in model.parameters()} == {"meta"}


def test_load_student_refuses_a_missing_device_before_loading(no_gpu):
    with pytest.raises(AdaptError, match="no CUDA device"):
        load_student(StudentConfig(model="/nonexistent", device="cuda"))


def test_exact_search_scores_on_the_queries_device_from_a_host_store(tiny_bert):
    model = _student(tiny_bert, "cpu")
    docs = [Document(i, t) for i, t in DOCS]
    index = ExactIndex.build(model, docs, 16, batch_size=3)
    assert {t.device.type for group in index.groups for t in group} == {"cpu"}
    with torch.no_grad():
        encoded = model.encode_queries([t for _, t in QUERIES])
    scores = index.score(encoded, max_block_elements=1)  # one document per block
    assert scores.device == encoded.device and scores.shape == (len(QUERIES), len(DOCS))
    ranking = index.search(model, [Query(i, t) for i, t in QUERIES], k=3)
    best = scores.argmax(dim=1).tolist()
    assert [hits[0][0] for hits in ranking.values()] == [docs[i].id for i in best]
    # Queries elsewhere than the store: every block follows them there.
    assert index.score(encoded.to("meta")).device.type == "meta"


class _StudentOn(torch.nn.Module):
    """Scores from one parameter on `device`: what the loss step sees of a student there."""

    def __init__(self, device: str) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1, device=device))

    def score_groups(self, queries, docs, width, doc_maxlen, in_batch=False) -> torch.Tensor:
        return self.weight.expand(len(queries), len(docs) if in_batch else width)


def test_the_loss_step_builds_its_tensors_on_the_students_device():
    docs = [Document(str(i), "text") for i in range(4)]
    example = Example(Query("q", "text"), docs, [4.0, 3.0, 2.0, 1.0], [(0, 1, 0.9)])
    losses = _losses(_StudentOn("meta"), [example], DistillConfig(), 16)
    assert {name: v.device.type for name, v in losses.items()} == dict.fromkeys(
        ["kd", "pair", "loss"], "meta"
    )
    losses = _losses(_StudentOn("meta"), [example, example], DistillConfig(lambda_ib=1.0), 16)
    assert {name: v.device.type for name, v in losses.items()} == dict.fromkeys(
        ["kd", "pair", "loss", "ib"], "meta"
    )


@pytest.mark.parametrize("kind", ["colbert", "dense"])
def test_a_bf16_student_indexes_searches_and_trains(tiny_bert, kind, tmp_path):
    """bf16 autocast end to end on the CPU (what `auto` gives a GPU or a CPU with bf16 units):
    the rankings agree with fp32's, and a training step leaves fp32 weights."""
    from adapt.distill.train import train

    if kind == "dense":
        pytest.importorskip("faiss")
    from adapt.retriever.backend import build, choose

    docs = [Document(i, t) for i, t in DOCS]
    queries = [Query(i, t) for i, t in QUERIES]
    rankings = {}
    for dtype in ("float32", "bfloat16"):
        model = _student(tiny_bert, "cpu", kind, dtype)
        assert model.compute_dtype == getattr(torch, dtype)
        index = build(
            choose("exact", len(docs), kind),
            model,
            tmp_path / "no-checkpoint",
            docs,
            tmp_path / dtype,
            16,
            3,
        )
        rankings[dtype] = index.search(model, queries, k=3)
    for qid, hits in rankings["float32"].items():
        assert rankings["bfloat16"][qid][0][0] == hits[0][0]
    example = Example(queries[0], docs[:4], [4.0, 3.0, 2.0, 1.0], [(0, 1, 0.9)])
    log = train(model, [example], DistillConfig(batch_size=1, epochs=1), 16, 0)
    assert log and all(p.dtype == torch.float32 for p in model.parameters())
