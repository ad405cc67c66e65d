"""The Ray engine on a local Ray instance started here (2 CPUs, two worker processes): a run cut short
on the local engine and finished on Ray skips what was done and ends with the same answers and summary
as an uninterrupted local run (one Ray run only: starting workers is the slow part on 2 CPUs)."""

import json
import os

import pandas as pd
import pytest

from lvsal_nb.eval.runner import RunSpec, run

ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install ray` (in the dev extra)")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def records(out):
    return {r["key"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}


@pytest.mark.slow
def test_ray_run_equals_local_run_and_resumes(model_dir, tmp_path, local_ray, interrupt):
    base = dict(
        model=model_dir,
        dataset="fixtures",
        n=3,
        methods=["greedy", "sgrs", "vcd"],
        max_new_tokens=[3],
        dtype="float64",
        progress=False,
        threads=1,
    )
    local = run(RunSpec(task="chair", out=tmp_path / "local", **base))
    cut = interrupt(3)
    with pytest.raises(cut.Stop):
        run(RunSpec(task="chair", out=tmp_path / "ray", **base), on_result=cut)
    done = cut.seen
    again = []
    remote = run(
        RunSpec(task="chair", out=tmp_path / "ray", engine="ray", workers=2, **base),
        on_result=lambda rec: again.append(rec["key"]),
    )
    assert len(again) == 9 - 3 and not set(again) & set(done)

    cols = [c for c in local.columns if c != "seconds"]
    pd.testing.assert_frame_equal(remote[cols], local[cols])
    a, b = records(tmp_path / "local"), records(tmp_path / "ray")
    assert a.keys() == b.keys()

    def same(r):
        return {f: v for f, v in r.items() if f not in ("seconds", "worker")}

    for k in a:
        assert same(a[k]) == same(b[k])
    workers = {b[k]["worker"] for k in again}
    assert len(workers) == 2  # both Ray workers answered ...
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)  # ... in processes other than this one
    info = json.loads((tmp_path / "ray" / "run.json").read_text())["worker"]
    assert info["engine"] == "ray" and info["workers"] == 2 and info["placement"] == {"num_cpus": 1}
