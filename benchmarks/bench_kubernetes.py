"""(k) Kubernetes dispatch: submit -> the Job's create request at the API server.

The runner talks to the Kubernetes API emulator of the tests (tests/kubernetes/cluster.py:
kmock on loopback, through a kubeconfig), with the test's job controller completing each Job
at once. An in-process agent serves the queue (prebuilt image: the code goes in a ConfigMap
first). Latency is the emulator's arrival time of the Job's POST minus the time taken just
before ``submit()``; items go one at a time, each waited for until it finished; the first is
a warm-up (client, watches). The baseline is one ``create_namespaced_job`` of a small Job
with the official client against the same (fresh) API, to its arrival: what any tool pays.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import Figure, log, ms, summary, temp_store

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


BASELINE_JOB = {
    "apiVersion": "batch/v1", "kind": "Job",
    "metadata": {"name": "baseline", "namespace": "baseline", "labels": {"a": "b"}},
    "spec": {"backoffLimit": 0, "template": {"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "job", "image": "python:3.11-slim",
                        "command": ["python3", "-c", "print('hello')"]}]}}},
}


def run(quick: bool) -> list[Figure]:
    import copy
    import os

    from kubernetes import client as k8s

    from launch_jupyter.api import Launch
    from tests.kubernetes.cluster import ClusterServer, Controller

    n = 10 if quick else 30
    server = ClusterServer().start()
    controller = None
    old = os.environ.get("KUBECONFIG")
    try:
        # The baseline first, on a fresh emulator with no controller at work.
        base = []
        config = k8s.Configuration()
        config.host = server.url
        with k8s.ApiClient(config) as api:
            batch = k8s.BatchV1Api(api)
            for i in range(n + 1):
                body = copy.deepcopy(BASELINE_JOB)
                body["metadata"]["name"] = f"baseline-{i}"
                t0 = time.time()
                batch.create_namespaced_job("baseline", body)
                if i:
                    base.append(server.cluster.created_at[f"baseline-{i}"] - t0)
            for i in range(n + 1):
                batch.delete_namespaced_job(f"baseline-{i}", "baseline")
        controller = Controller(server).start()
        with tempfile.TemporaryDirectory(prefix="lj-bench-k8s-") as tmp:
            # the agent's own context names the namespace: its default policy runs Jobs there
            os.environ["KUBECONFIG"] = str(server.kubeconfig(Path(tmp) / "kubeconfig",
                                                             namespace="bench"))
            with temp_store("kubernetes") as store:
                launch = Launch(store.url)
                launch.create_queue("kube", runner="kubernetes", config={
                    "image": "python:3.11-slim",
                    "template": {"namespace": "bench"}})
                script = store.root / "job.py"
                script.write_text("print('hello')\n")
                ref = launch.create_job(script, name="bench").ref
                agent = launch.agent(["kube"]).start()
                samples = []
                try:
                    for i in range(n + 1):
                        t0 = time.time()
                        item = launch.submit(ref, queue="kube")
                        done = item.wait(timeout=60, progress=False)
                        if done.state != "succeeded":
                            raise RuntimeError(f"item {item.id} ended {done.state}")
                        name = done.info()["run"]["k8s_job"]
                        if i:  # the first one connects and opens the watches
                            samples.append(server.cluster.created_at[name] - t0)
                finally:
                    agent.stop()
                    launch.close()
    finally:
        if controller is not None:
            controller.stop()
        server.stop()
        if old is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = old
    s = {k: (v if k == "n" else ms(v)) for k, v in summary(samples).items()}
    b = {k: (v if k == "n" else ms(v)) for k, v in summary(base).items()}
    log(f"  kubernetes submit -> Job created: p50 {s['p50']} ms, p99 {s['p99']} ms; "
        f"baseline create_namespaced_job p50 {b['p50']} ms")
    return [Figure(
        name="submit -> Job create request at the API p50 (kubernetes, in-process agent, "
             "emulated API on loopback)",
        value=s["p50"], unit="ms",
        baseline_name="one create_namespaced_job with the official client -> arrival, p50",
        baseline=b["p50"], target="-", met=None,
        details={"samples_ms": [ms(x) for x in samples], "summary_ms": s,
                 "baseline_summary_ms": b})]
