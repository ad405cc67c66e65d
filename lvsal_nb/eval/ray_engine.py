"""The Ray engine: the same run spread over a Ray cluster, one model per worker process.

    lvsal eval chair ... --engine ray                      # a local Ray instance, one worker per GPU
    lvsal eval chair ... --engine ray --workers 8          # 8 CPU worker processes (no GPU)
    lvsal eval chair ... --engine ray --ray-address auto   # an existing cluster

Each worker is a Ray actor wrapping `lvsal_nb.eval.worker.Worker`: it loads the model once, then
answers units (small dicts: image source, prompt, method, length, seed) as the driver hands them out,
one at a time per worker (`ray.util.ActorPool.map_unordered`). Workers return the output and the
trace's bytes; only the driver writes the run folder (results.jsonl, traces/), so resuming works
exactly as with the local engine, and nodes need no shared disk for the outputs. Every unit carries
its own seed, so the answers equal the local engine's for the same run seed (greedy and seeded
sampling alike), whatever the number of workers or the order units finish in.

Placement: with GPUs in the cluster (and --device not "cpu"), one actor per GPU (`num_gpus=1`,
device "cuda"); else `--workers N` CPU actors (default: cluster CPUs // --cpus-per-worker), each with
`--cpus-per-worker` CPUs and as many torch threads.

Several machines:

    # on the head node
    ray start --head --port=6379
    # on every other node (same Python environment with lvsal-nb installed, same version)
    ray start --address=HEAD_IP:6379
    # on the head node (or any node), the run itself
    lvsal eval pope --annotations /data/coco/instances_val2014.json --images /data/coco/val2014 \\
        --model /models/llava-1.5-7b-hf --engine ray --ray-address auto --out runs/pope

Workers read the images and the model from their own disk: mount the image folder and the
checkpoint at the same path on every node (or use the toy dataset / fixtures, which need no files).
The driver alone writes --out. Stop the cluster with `ray stop` on each node.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lvsal_nb.errors import ConfigError
from lvsal_nb.eval.worker import Worker


class RayEngine:
    """Engine interface (start / imap / close) over Ray actors.

    Args:
        workers: number of actors (default: one per GPU, else cluster CPUs // cpus_per_worker).
        cpus_per_worker: CPUs reserved per actor, also its torch thread count. Default 1.
        address: `ray.init` address ("auto", "HOST:6379"); None: RAY_ADDRESS or a new local instance.
            If Ray is already initialised in this process (a notebook, a test), that instance is used.
        device: None / "cuda" (GPUs when the cluster has them) or "cpu" (never ask for GPUs).
    """

    name = "ray"

    def __init__(
        self,
        workers: int | None = None,
        cpus_per_worker: int = 1,
        address: str | None = None,
        device: str | None = None,
    ):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
        if not isinstance(cpus_per_worker, int) or cpus_per_worker < 1:
            raise ConfigError(f"--cpus-per-worker must be an integer >= 1, got {cpus_per_worker!r}")
        self.workers, self.cpus, self.address, self.device = workers, cpus_per_worker, address, device
        self.actors: list = []
        self._owns_ray = False

    def start(self, worker_kwargs: dict[str, Any]) -> dict[str, Any]:
        """Connect to (or start) Ray, place the workers (one per GPU, else cpus / cpus_per_worker)
        and wait until each has loaded the model; returns the first worker's description + placement."""
        try:
            import ray
        except ImportError as e:
            raise ConfigError("--engine ray needs Ray: pip install 'ray>=2.9' (or use --engine local)") from e
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False)
            self._owns_ray = True
        res = ray.cluster_resources()
        gpus, cpus = int(res.get("GPU", 0)), int(res.get("CPU", 1))
        use_gpu = gpus > 0 and (self.device is None or str(self.device).startswith("cuda"))
        n = self.workers or (gpus if use_gpu else max(1, cpus // self.cpus))
        if use_gpu and n > gpus:
            raise ConfigError(f"--workers {n} but the cluster has {gpus} GPU(s); one worker per GPU at most")
        opts = {"num_cpus": self.cpus, **({"num_gpus": 1} if use_gpu else {})}
        kw = {
            **worker_kwargs,
            "device": "cuda" if use_gpu else "cpu",
            "threads": worker_kwargs.get("threads") or self.cpus,
        }
        actor_cls = ray.remote(Worker)
        self.actors = [actor_cls.options(**opts).remote(**kw) for _ in range(n)]
        infos = ray.get([a.describe.remote() for a in self.actors])  # waits until every model is loaded
        return {**infos[0], "engine": "ray", "workers": n, "placement": opts}

    def imap(self, units: Iterable[dict]) -> Iterator[dict]:
        """Run `units` on the workers; yields each unit's record as it finishes (any order)."""
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        yield from pool.map_unordered(lambda actor, unit: actor.run.remote(unit), list(units))

    def close(self) -> None:
        """Kill the workers; shut Ray down if this engine started it."""
        import ray

        for a in self.actors:
            ray.kill(a)
        self.actors = []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
