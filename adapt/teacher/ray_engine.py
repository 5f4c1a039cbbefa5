"""The teacher on a Ray cluster (`teacher.ray_address`, the `[ray]` extra): an actor pool, each
actor one teacher loaded once, and the driver the single writer of the score cache.

What runs where:
- the driver (the `adapt` process) looks every prompt up in the cache, builds the pending ones,
  cuts them into units by length exactly as the local engine does (engine.units), and sends
  each unit as one `Call` to whichever actor has room: two calls held per actor, so none idles
  on a round trip, and a slow or large node simply takes fewer. Results come back in the order
  they finish; the scorer commits them, so resuming, fingerprints and reports are the local
  engine's, and a unit is in the cache once or not at all.
- each actor holds one of adapt's own backends (transformers on CPU or GPU, or vLLM), the same
  code, settings and tokenizer as a local run, so the same units give the same bits. Actors are
  spread over the nodes; one takes one GPU (vLLM: `tensor_parallel_size` GPUs, which vLLM then
  drives itself from inside the actor) or, on a cluster without GPUs, one CPU and one thread.

Why not Ray Data LLM's vLLM processor: Ray 2.60's `ray[llm]` pins vLLM 0.29, which has no
`logprob_token_ids`, so the processor can return only each position's top-k log-probabilities
and a label outside them has no score (the research code's bug); and one environment cannot
hold both that vLLM and the >= 0.32 that adapt's backend needs. Its actors also live for one
dataset, so each stage would load a 7B teacher again. Query likelihood alone (`prompt_logprobs`)
would fit, but one stage on one engine and the next on another would score with two vLLMs.

Faults: an actor that dies (its process, or its node) is restarted by Ray; the calls it held
fail at once and go back to the queue for any actor with room, so none is lost, none is stored
twice, and the stage ends on the actors that remain even if the lost one never comes back.
"""

import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator

from rich.console import Console

from adapt.config import TeacherConfig
from adapt.errors import AdaptError
from adapt.teacher.backends import Backend, load_backend
from adapt.teacher.engine import DEFAULT_BATCH, Call

LOCAL = "local"  # teacher.ray_address: a cluster of this machine alone, started for the run
DEPTH = 2  # calls an actor holds: one running, the next already there
RETRY_S = 1.0  # how often a restarting actor is asked whether it is back
WAIT_NOTICE_S = 120.0  # say so when no actor has loaded the teacher after this long


def _ray():
    try:
        import ray
    except ImportError:
        raise AdaptError(
            "teacher.ray_address needs Ray: pip install 'adapt[ray]' (the same Ray version on "
            "every node of the cluster)"
        ) from None
    return ray


def connect(address: str) -> None:
    """Join the cluster `address` names: "auto" (the running one), "local" (one started for
    this process), or HOST:PORT / ray://HOST:PORT. A process already connected (a notebook, a
    test) keeps its connection."""
    ray = _ray()
    if ray.is_initialized():
        return
    quiet = {"log_to_driver": False, "logging_level": logging.WARNING}
    try:
        if address == LOCAL:
            ray.init(include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    except ConnectionError as err:
        raise AdaptError(
            f"teacher.ray_address '{address}': {err} (start a cluster with `ray start --head`, "
            f"or use '{LOCAL}' for one of this machine alone)"
        ) from None


def actor_shape(t: TeacherConfig, resources: dict[str, float]) -> tuple[dict[str, float], int]:
    """Ray resources of one teacher actor, and how many actors, on a cluster with `resources`:
    one per GPU (vLLM: per `tensor_parallel_size` GPUs); without GPUs, or with the teacher
    pinned to the CPU, one per CPU. `t.ray_actors` sets the count.

    >>> actor_shape(TeacherConfig(), {"CPU": 64.0, "GPU": 8.0})
    ({'num_cpus': 1, 'num_gpus': 1}, 8)
    >>> actor_shape(TeacherConfig(engine="vllm", tensor_parallel_size=2), {"CPU": 8, "GPU": 8})
    ({'num_cpus': 1, 'num_gpus': 2}, 4)
    >>> actor_shape(TeacherConfig(ray_actors=2), {"CPU": 16.0})
    ({'num_cpus': 1}, 2)
    """
    gpus = int(resources.get("GPU", 0))
    if gpus and t.device != "cpu":
        per = t.tensor_parallel_size if t.engine == "vllm" else 1
        return {"num_cpus": 1, "num_gpus": per}, t.ray_actors or max(1, gpus // per)
    return {"num_cpus": 1}, t.ray_actors or max(1, int(resources.get("CPU", 1)))


class TeacherActor:
    """One teacher, loaded once, running the calls the driver sends it."""

    def __init__(self, settings: TeacherConfig, threads: int) -> None:
        import torch

        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        torch.set_num_threads(threads)
        self.backend = load_backend(settings)

    def describe(self) -> dict:
        """What the driver's scorer needs to know of the backend (and checks actors agree on)."""
        b = self.backend
        return {
            "fingerprint": b.fingerprint,
            "is_seq2seq": b.is_seq2seq,
            # generation's batch, as generation reads it
            "batch_size": getattr(b, "batch_size", DEFAULT_BATCH),
            "unit_size": getattr(b, "unit_size", DEFAULT_BATCH),
            "share_prefixes": getattr(b, "share_prefixes", False),
        }

    def tokenizer(self):
        """The backend's tokenizer: the driver truncates and wraps prompts with this very one."""
        return self.backend.tokenizer

    def run(self, call: Call):
        return call.run(self.backend)


@dataclasses.dataclass
class _Actor:
    handle: object
    probe: object | None = None  # describe() in flight: (re)starting
    ready: bool = False
    retry_at: float = 0.0  # when to ask a restarting actor again
    busy: int = 0  # calls it holds
    served: int = 0  # calls it answered


class RayTeacher:
    """A pool of teacher actors that stands in for a backend: it carries the attributes the
    scorer reads (fingerprint, tokenizer, batch sizes) and runs the scorer's calls
    (`run_calls`, the Engine protocol of adapt/teacher/engine.py)."""

    def __init__(self, t: TeacherConfig) -> None:
        ray = _ray()
        connect(t.ray_address)
        options, count = actor_shape(t, ray.cluster_resources())
        on_gpu = "num_gpus" in options
        # The actor's own GPU is its cuda:0; without one it must not touch a GPU of its node.
        settings = dataclasses.replace(
            t, ray_address="", ray_actors=0, device="auto" if on_gpu else "cpu"
        )
        remote = ray.remote(TeacherActor).options(
            **options, max_restarts=-1, max_task_retries=0, scheduling_strategy="SPREAD"
        )
        threads = int(options["num_cpus"])  # torch's threads: the CPUs Ray gave the actor
        self.pool = [_Actor(remote.remote(settings, threads)) for _ in range(count)]
        shape = f"{options['num_gpus']} GPU" if on_gpu else "1 CPU"
        Console(stderr=True).print(
            f"teacher on Ray ({t.ray_address}): {count} actors of {shape} each, loading it"
        )
        first = self._first_ready()
        described = ray.get(first.probe)
        first.probe, first.ready = None, True
        self.fingerprint: str = described["fingerprint"]
        self.is_seq2seq: bool = described["is_seq2seq"]
        self.batch_size: int = described["batch_size"]
        self.unit_size: int = described["unit_size"]
        self.share_prefixes: bool = described["share_prefixes"]
        self.tokenizer = ray.get(first.handle.tokenizer.remote())

    def _first_ready(self) -> _Actor:
        """The first actor whose teacher is loaded (the others join the pool as they load)."""
        ray = _ray()
        for actor in self.pool:
            actor.probe = actor.handle.describe.remote()
        probes = {actor.probe: actor for actor in self.pool}
        failure: Exception | None = None
        while probes:
            done, _ = ray.wait(list(probes), num_returns=1, timeout=WAIT_NOTICE_S)
            if not done:
                Console(stderr=True).print(
                    f"teacher on Ray: still no actor loaded after {WAIT_NOTICE_S:.0f} s; is "
                    f"there room on the cluster? ({ray.available_resources()} free)"
                )
                continue
            actor = probes.pop(done[0])
            try:
                ray.get(done[0])
            except ray.exceptions.RayActorError as err:
                failure, actor.probe = err, None
                continue
            return actor
        raise AdaptError(f"no teacher actor could load the teacher: {_reason(failure)}")

    @property
    def served(self) -> list[int]:
        """Calls each actor answered so far."""
        return [actor.served for actor in self.pool]

    def run_calls(self, calls: Iterable[Call]) -> Iterator[tuple[int, object]]:
        """(position, result) for every call, as actors finish them; a call whose actor died
        goes back to the queue for the next actor with room. Calls are built as actors take
        them, not all at once."""
        ray = _ray()
        source = enumerate(calls)
        held: dict[int, Call] = {}  # calls not yet answered, by position
        queue: deque[int] = deque()
        flight: dict = {}  # ObjectRef -> (position, actor)

        def pull() -> None:
            for position, call in source:  # at most one
                held[position] = call
                queue.append(position)
                return

        pull()
        try:
            while queue or flight:
                self._probe_due()
                for depth in range(1, DEPTH + 1):  # a call for every actor before a second
                    for actor in self.pool:
                        if actor.ready and actor.busy < depth and queue:
                            position = queue.popleft()
                            flight[actor.handle.run.remote(held[position])] = (position, actor)
                            actor.busy += 1
                            if not queue:
                                pull()
                ref = self._wait(list(flight))
                if ref not in flight:
                    continue  # a probe answered, or a restarting actor's retry is due
                position, actor = flight.pop(ref)
                actor.busy -= 1
                try:
                    result = ray.get(ref)
                except (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError):
                    queue.appendleft(position)  # lost with its actor: the next one takes it
                    actor.ready, actor.retry_at = False, time.monotonic()
                    continue
                except ray.exceptions.RayTaskError as err:
                    if isinstance(err.cause, AdaptError):
                        raise err.cause from None
                    raise
                actor.served += 1
                del held[position]
                yield position, result
        finally:  # stopped early (Ctrl-C, an error): the calls still queued are not wanted
            for ref, (_, actor) in flight.items():
                ray.cancel(ref)
                actor.busy -= 1

    def _probe_due(self) -> None:
        """Ask each actor that is down, once its retry time has come, whether it is back."""
        now = time.monotonic()
        for actor in self.pool:
            if not actor.ready and actor.probe is None and actor.retry_at <= now:
                actor.probe = actor.handle.describe.remote()

    def _wait(self, flight: list) -> object | None:
        """The first call or probe to finish (a probe is handled here), or None at the next
        retry time."""
        ray = _ray()
        probes = {actor.probe: actor for actor in self.pool if actor.probe is not None}
        retries = [a.retry_at for a in self.pool if not a.ready and a.probe is None]
        timeout = max(0.0, min(retries) - time.monotonic()) if retries else None
        if not flight and not probes:
            if timeout is None:
                raise AdaptError("no teacher actor is left on the Ray cluster")
            time.sleep(timeout)
            return None
        done, _ = ray.wait([*flight, *probes], num_returns=1, timeout=timeout)
        if not done or done[0] not in probes:
            return done[0] if done else None
        actor = probes[done[0]]
        actor.probe = None
        try:
            described = ray.get(done[0])
        except ray.exceptions.ActorDiedError as err:  # for good: it failed to load the teacher
            self.pool.remove(actor)
            if not self.pool:
                raise AdaptError(f"no teacher actor is left: {_reason(err)}") from None
            return None
        except ray.exceptions.RayActorError:  # restarting, or waiting for room on a node
            actor.retry_at = time.monotonic() + RETRY_S
            return None
        if described["fingerprint"] != self.fingerprint:
            raise AdaptError(
                f"the Ray cluster's nodes load different teachers ({described['fingerprint']} "
                f"and {self.fingerprint}): give every node the same model files, and pin "
                "teacher.dtype where their chips would resolve 'auto' differently"
            )
        actor.ready = True
        return None

    def close(self) -> None:
        """Stop the actors now (they stop anyway when this process ends or drops the pool)."""
        ray = _ray()
        for actor in self.pool:
            ray.kill(actor.handle)
        self.pool = []


def load_teacher(t: TeacherConfig) -> Backend | RayTeacher:
    """The teacher `t` names: its backend in this process, or with `t.ray_address` a pool of them
    on that Ray cluster. Here, not in `load_backend`, which the actors call themselves."""
    return RayTeacher(t) if t.ray_address else load_backend(t)


def _reason(err: Exception) -> str:
    """The first line of a Ray error, which otherwise carries a whole remote traceback."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
