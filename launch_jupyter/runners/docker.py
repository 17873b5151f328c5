"""The docker runner: each attempt runs in a container (the ``docker`` SDK).

The agent holds the lease of a docker run and renews it (see docs/architecture.md, "Who holds the
lease"); the container keeps running without the agent. A thread per run, in the agent's
process, builds the image (phase ``building``), creates and starts the container with
labels, the LAUNCH_* variables and the allowed resources of the queue's rendered template,
streams its output into the store, watches cancel, timeout and the lease (fencing), copies
the executed notebook and ``LAUNCH_OUTPUT_DIR`` out, records the outcome and removes the
container. An agent restarted after a crash finds a running container by its labels and
adopts it (``DockerRunner.adopt``) instead of starting a second one.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
import shutil
import socket
import tarfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import LaunchError
from . import build
from .base import (
    UPSTREAM_DIR,
    HeldRun,
    RunRequest,
    StoreConnections,
    job_environment,
    outcome,
    upstream_files,
)
from .metrics import MarkerSplitter, raw_overlap
from .policy import AgentPolicy
from .templates import render

log = logging.getLogger("launch_jupyter.runners.docker")

LABEL = "launch-jupyter"
TICK = 0.2  # seconds between log flushes
CHECK_EVERY = 0.5  # seconds between cancel-flag reads

#: template keys the docker runner understands; anything else is refused
ALLOWED_KEYS = {"gpus", "cpus", "memory", "shm_size", "volumes", "network", "env", "labels",
                "privileged", "pid", "ipc", "devices", "cap_add"}
#: admin switches (queue config ``admin:``) and what each unlocks
ADMIN_KEYS = {"allow_privileged", "allow_host_namespaces", "allow_devices",
              "allow_host_network"}


def container_options(template: dict, admin: dict) -> dict[str, Any]:
    """``containers.create`` keyword arguments from a rendered queue template.

    Only allowlisted keys pass; privileged mode, extra capabilities, host PID/IPC, devices
    and the host network need the matching ``admin`` switch. Raises LaunchError.
    """
    template = dict(template or {})
    admin = dict(admin or {})
    unknown = set(template) - ALLOWED_KEYS
    if unknown:
        raise LaunchError(f"the queue template has key(s) the docker runner does not allow: "
                          f"{', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(ALLOWED_KEYS))}")
    bad_admin = set(admin) - ADMIN_KEYS
    if bad_admin:
        raise LaunchError(f"unknown admin option(s) {', '.join(sorted(bad_admin))}; "
                          f"use: {', '.join(sorted(ADMIN_KEYS))}")

    def refuse(what: str, switch: str) -> LaunchError:
        return LaunchError(f"{what} is refused on this queue: its admin config does not set "
                           f"`{switch}: true` (only the queue's creator can; recreate the queue "
                           "with it, or remove it from the template)")

    opts: dict[str, Any] = {}
    if template.get("privileged") not in (None, False, "false", ""):
        if not admin.get("allow_privileged"):
            raise refuse("privileged mode", "allow_privileged")
        opts["privileged"] = True
    if template.get("cap_add"):
        if not admin.get("allow_privileged"):
            raise refuse("cap_add", "allow_privileged")
        opts["cap_add"] = _string_list(template["cap_add"], "cap_add")
    for key in ("pid", "ipc"):
        value = template.get(key)
        if value in (None, ""):
            continue
        if value != "host":
            raise LaunchError(f"template {key}: {value!r} is not supported; use 'host' or "
                              "leave it out")
        if not admin.get("allow_host_namespaces"):
            raise refuse(f"the host {key.upper()} namespace", "allow_host_namespaces")
        opts[f"{key}_mode"] = "host"
    if template.get("devices"):
        if not admin.get("allow_devices"):
            raise refuse("devices", "allow_devices")
        opts["devices"] = _string_list(template["devices"], "devices")
    network = template.get("network")
    if network not in (None, ""):
        if not isinstance(network, str):
            raise LaunchError(f"template network must be a string, got {network!r}")
        if network == "host":
            if not admin.get("allow_host_network"):
                raise refuse("the host network", "allow_host_network")
            opts["network_mode"] = "host"
        elif network == "none":
            opts["network_mode"] = "none"
        else:
            opts["network"] = network
    gpus = template.get("gpus")
    if gpus not in (None, "", 0):
        try:
            count = -1 if gpus == "all" else int(gpus)
        except (TypeError, ValueError):
            raise LaunchError(f"template gpus must be an integer or 'all', got {gpus!r}") from None
        from docker.types import DeviceRequest

        opts["device_requests"] = [DeviceRequest(count=count, capabilities=[["gpu"]])]
    cpus = template.get("cpus")
    if cpus not in (None, "", 0):
        try:
            opts["nano_cpus"] = int(float(cpus) * 1e9)
        except (TypeError, ValueError):
            raise LaunchError(f"template cpus must be a number, got {cpus!r}") from None
    for key, arg in (("memory", "mem_limit"), ("shm_size", "shm_size")):
        value = template.get(key)
        if value not in (None, ""):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise LaunchError(f"template {key} must be like '4g' or a byte count, "
                                  f"got {value!r}")
            if "${" not in str(value):  # a ${NAME} is checked once the agent has filled it in
                _check_size(key, value)
            opts[arg] = value
    volumes = template.get("volumes")
    if volumes:
        if isinstance(volumes, dict):
            opts["volumes"] = volumes
        else:
            opts["volumes"] = _string_list(volumes, "volumes")
    return opts


def _check_size(key: str, value: str | int) -> None:
    """Refuse a size docker-py's ``parse_bytes`` (run by ``containers.create``) cannot read, by
    name, before any container: not a DockerException traceback holding the value. A server
    without the docker SDK leaves it to the agent, which has it."""
    try:
        from docker.errors import DockerException
        from docker.utils import parse_bytes
    except ImportError:
        return
    try:
        parse_bytes(value)
    except DockerException:
        raise LaunchError(f"template {key} must be like '4g' or a byte count, "
                          f"got {value!r}") from None


def _string_list(value: Any, key: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise LaunchError(f"template {key} must be a string or a list of strings, got {value!r}")


def _template_mapping(value: Any, key: str) -> dict[str, str]:
    if value in (None, ""):
        return {}
    if not isinstance(value, dict):
        raise LaunchError(f"template {key} must be a mapping of names to values")
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def container_name(item_id: str, attempt: int) -> str:
    """One name per attempt: docker refuses a second container of the same attempt."""
    return f"launch-{item_id.lower()}-{attempt}"


def _parse_time(text: str | None) -> float | None:
    """Docker's RFC 3339 nano timestamps to epoch seconds."""
    if not text or text.startswith("0001-"):
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    try:
        stamp = datetime.fromisoformat(main + "+00:00").timestamp()
    except ValueError:
        return None
    return stamp + (float("0." + frac) if frac.isdigit() else 0.0)


class DockerRun(HeldRun):
    """One attempt in a container, driven by a thread of the agent's process."""

    def __init__(self, runner: DockerRunner, request: RunRequest, *,
                 plan: build.ImagePlan | None = None, options: dict | None = None,
                 container: Any = None) -> None:
        self.runner = runner
        self.request = request
        self.item_id: str = request.item["id"]
        self.token = request.token
        self.attempt = request.attempt
        self.name = container_name(self.item_id, self.attempt)
        self.plan = plan
        self.options = options or {}
        self.container = container
        self.adopted = container is not None
        self.timeout: float | None = request.item.get("timeout")
        self._init_held()
        self.skip = 0  # bytes of container output already in the store (adoption)
        self.output_done = threading.Event()
        self.stop_reason: str | None = None  # "cancel" | "timeout"
        self.started_at: float | None = None
        self._stream: Any = None
        self._stopper: threading.Thread | None = None
        self.thread = threading.Thread(target=self._main, name=f"docker-{self.item_id}",
                                       daemon=True)

    # -- the Run protocol ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        return {"runner": "docker", "host": socket.gethostname(), "container": self.name,
                "run_dir": str(self.request.run_dir)}

    def detach(self) -> None:
        """Stop watching (the agent is stopping); the container keeps running."""
        self.detached.set()
        self._close_stream()

    # -- the thread ---------------------------------------------------------------------

    def _main(self) -> None:
        try:
            if self.container is None:
                self._create_and_start()
                if self.container is None:
                    return
            self._follow()
        except LaunchError as err:
            self._fail(str(err), "start")
        except Exception as err:  # the engine went away, a bug: never leave the item hanging
            log.exception("docker run of %s failed", self.item_id)
            self._fail(f"docker runner error: {type(err).__name__}: {err}", "run")

    def _create_and_start(self) -> None:
        assert self.plan is not None
        docker = self.runner.client()
        request = self.request
        self.store.update_run_info(self.item_id, self.token, phase="building",
                                   image=self.plan.tag)
        last_flush = [time.monotonic()]

        def progress(line: str) -> None:
            self.log_line(line, leading=False)
            if time.monotonic() - last_flush[0] > TICK:
                self.flush()
                last_flush[0] = time.monotonic()

        image = build.ensure_image(docker, self.plan, progress)
        self.flush()
        if time.time() > self.lease_until - self._margin():
            self.fenced = True  # the lease was lost during the build: start nothing
            return
        if self.detached.is_set() or self._cancel_seen():
            if not self.detached.is_set():
                self._finish_cancelled_before_start()
            return
        spec = request.job.spec
        mode = spec.get("mode") or "script"
        entry = spec["entrypoint"]
        executed = ""
        uploads: list[tuple[str, bytes]] = []
        if mode == "notebook":
            import nbformat

            from ..jobs.parameters import inject_parameters

            source = dict(request.files)[entry]
            nb = nbformat.reads(source.decode(), as_version=4)
            nb = inject_parameters(nb, request.item.get("parameters") or {})
            name = posixpath.basename(entry)
            uploads.append((f"launch/run/{name}", nbformat.writes(nb).encode()))
            executed = f"{build.EXECUTED_DIR}/{name}"
            command = ["python3", build.EXECUTOR, "--input", f"{build.RUN_DIR}/{name}",
                       "--output", executed, "--kernel", "python3",
                       "--error-file", build.ERROR_FILE]
        else:
            command = ["python3", "-u", f"{build.JOB_DIR}/{entry}"]
        # The run wrapper passes launch_jupyter.log's points into the log (runners/metrics.py).
        command = ["python3", f"{build.LIB_DIR}/launch_run.py", "--metrics-marker", self.marker,
                   "--", *command]
        dirs: list[tuple[str, int]] = []
        if not self.plan.has_code:
            # Prebuilt image or the job's own Dockerfile: the code and support files come in
            # now; the directories are open to whatever user the image runs as.
            uploads += [(f"launch/job/{p}", c) for p, c in request.files]
            uploads += [(f"launch/lib/{p}", c) for p, c in build.support_files()]
            dirs = [("launch", 0o777), ("launch/job", 0o777), ("launch/output", 0o777),
                    ("launch/executed", 0o777), ("launch/run", 0o755)]
        # Run-after: the upstream items' outputs, unpacked into the work dir (upstream/ID/).
        upstream = {i: f"{build.JOB_DIR}/{UPSTREAM_DIR}/{i}" for i in request.upstream}
        uploads += [(f"{build.JOB_DIR.lstrip('/')}/{UPSTREAM_DIR}/{path}", content)
                    for path, content in upstream_files(request)]
        labels = {
            **self.options.pop("_labels", {}),
            f"{LABEL}.item": self.item_id,
            f"{LABEL}.job": request.job.ref,
            f"{LABEL}.queue": request.item["queue"],
            f"{LABEL}.agent": request.agent_id,
            f"{LABEL}.attempt": str(self.attempt),
            f"{LABEL}.mode": mode,
            f"{LABEL}.executed": executed,
        }
        environment = {**job_environment(request, build.OUTPUT_DIR, self.options.pop("_env", {}),
                                         upstream=upstream),
                       "PYTHONPATH": build.LIB_DIR}
        from docker.errors import APIError

        try:
            container = docker.containers.create(
                image.id, command=command, name=self.name, labels=labels,
                environment=environment, working_dir=build.JOB_DIR, init=True, detach=True,
                **self.options)
        except APIError as err:
            if err.status_code == 409:
                raise LaunchError(f"a container for attempt {self.attempt} of item "
                                  f"{self.item_id} already exists ({self.name}); it is "
                                  "adopted, not started twice") from None
            raise LaunchError(f"docker could not create the container: "
                              f"{build._explain(err)}") from None
        self.container = container
        try:
            if uploads or dirs:
                container.put_archive("/", build.tar_bytes(uploads, dirs=dirs))
            container.start()
        except APIError as err:
            raise LaunchError(f"docker could not start the container: "
                              f"{build._explain(err)}") from None
        self.started_at = time.time()
        self.store.update_run_info(self.item_id, self.token, phase="running",
                                   container=self.name, container_id=container.id,
                                   image=image.tag, image_id=image.id,
                                   image_source=image.source)

    def _finish_cancelled_before_start(self) -> None:
        self.flush()
        self.store.finish(self.item_id, self.token, "cancelled",
                          error={"message": "cancelled before the container started",
                                 "stage": "run", "cell": None})

    def _prepare_adopted(self) -> None:
        """Skip the output the store already holds; learn when the container started."""
        container = self.container
        self.started_at = _parse_time(container.attrs.get("State", {}).get("StartedAt"))
        output = container.logs(stdout=True, stderr=True)
        item = self.store.get_item(self.item_id)
        size = item.get("log_bytes") or 0
        stored, _ = self.store.read_log(self.item_id, max(0, size - len(output)))
        self.skip = raw_overlap(stored, output, self.marker)
        self.logged = self.skip
        self.truncated = b"[launch-jupyter: log truncated at" in stored
        self.log_line(f"[launch-jupyter: agent {self.request.agent_id} adopted container "
                      f"{self.name}]")

    def _read_output(self) -> None:
        skip = self.skip
        splitter = MarkerSplitter(self.marker)
        try:
            stream = self.container.logs(stdout=True, stderr=True, stream=True, follow=True)
            self._stream = stream
            for data in stream:
                if self.detached.is_set():
                    break
                if skip:
                    cut = min(skip, len(data))
                    data, skip = data[cut:], skip - cut
                if data:
                    self.take(data, splitter)
        except Exception as err:  # the stream was closed under us, or the engine went away
            if not self.detached.is_set():
                log.debug("log stream of %s ended: %s", self.name, err)
        finally:
            with self.buffer_lock:
                self.buffer += splitter.finish()
            self.output_done.set()

    def _follow(self) -> None:
        if self.adopted:
            self._prepare_adopted()
        if self.started_at is None:
            self.started_at = time.time()
        threading.Thread(target=self._read_output, daemon=True,
                         name=f"docker-logs-{self.item_id}").start()
        margin = self._margin()
        next_check = time.monotonic()
        while True:
            if self.detached.is_set():
                return
            if time.time() > self.lease_until - margin:
                self._fence()
                return
            self.flush()
            now = time.monotonic()
            if now >= next_check and self.stop_reason is None:
                next_check = now + CHECK_EVERY
                if self._cancel_seen():
                    self._stop("cancel", "cancel requested")
            if (self.timeout and self.stop_reason is None
                    and time.time() - self.started_at > self.timeout):
                self._stop("timeout", f"timed out after {self.timeout:g} s")
            if self.output_done.wait(TICK):
                break
        if self.detached.is_set():
            return
        self._conclude()

    def _stop(self, reason: str, why: str) -> None:
        """Stop the container: SIGTERM now, SIGKILL after the grace period (docker stop)."""
        self.stop_reason = reason
        self.log_line(f"[launch-jupyter: {why}; stopping the container]")
        grace = max(0, int(round(self.request.cancel_grace)))

        def stop() -> None:
            try:
                self.container.stop(timeout=grace)
            except Exception as err:
                log.warning("could not stop %s: %s", self.name, err)

        self._stopper = threading.Thread(target=stop, daemon=True)
        self._stopper.start()

    def _fence(self) -> None:
        """The lease could not be renewed in time: no second copy may run; kill it."""
        self.fenced = True
        log.warning("lease of %s could not be renewed in time; killing container %s",
                    self.item_id, self.name)
        self._close_stream()
        self._release()

    def _conclude(self) -> None:
        from docker.errors import APIError

        try:
            result = self.container.wait(timeout=max(30.0, self.request.cancel_grace + 10))
            code: int | None = int(result.get("StatusCode", -1))
        except Exception as err:
            self.log_line(f"[launch-jupyter: could not read the exit status: {err}]")
            code = None
        try:
            self.container.reload()
            oom = bool(self.container.attrs.get("State", {}).get("OOMKilled"))
        except APIError:
            oom = False
        run_dir = self.request.run_dir
        cells, executed = self.end_progress()
        outputs = self._collect_outputs(run_dir)
        state, error = outcome(self.stop_reason, code, self.timeout,
                               lambda: self._job_error(code, oom))
        deadline = time.monotonic() + max(self.request.lease_ttl * 0.75, 1.0)
        while True:
            try:
                self.flush()
                self.store.finish(self.item_id, self.token, state, exit_code=code,
                                  error=error, outputs=outputs, cells=cells,
                                  executed_notebook=executed)
                break
            except Exception as err:
                if time.monotonic() > deadline:
                    log.warning("could not record the outcome of %s: %s", self.item_id, err)
                    return  # keep the container: the next agent adopts it and records it
                time.sleep(0.5)
        self._release()

    def _job_error(self, code: int | None, oom: bool) -> dict:
        if oom:
            return {"message": "the container ran out of memory (the queue's memory limit)",
                    "stage": "run", "cell": None}
        try:
            archive, _ = self.container.get_archive(build.ERROR_FILE)
            data = b"".join(archive)
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                member = tar.next()
                handle = tar.extractfile(member) if member is not None else None
                error = json.loads(handle.read()) if handle is not None else None
            if isinstance(error, dict) and "message" in error:
                error.setdefault("stage", "execute")
                error.setdefault("cell", None)
                return error
        except Exception:  # no error file: the job itself failed
            pass
        if code is None:
            return {"message": "the container's exit status is unknown", "stage": "run",
                    "cell": None}
        if code == 137:
            return {"message": "the job was killed (SIGKILL, exit code 137)", "stage": "run",
                    "cell": None}
        return {"message": f"the job exited with code {code}", "stage": "run", "cell": None}

    def _collect_outputs(self, run_dir: Path) -> list[dict]:
        """Copy the executed notebook and LAUNCH_OUTPUT_DIR out of the container."""
        from docker.errors import APIError, NotFound

        found: list[dict] = []
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            for folder in (build.OUTPUT_DIR, build.EXECUTED_DIR):
                target = run_dir / posixpath.basename(folder)
                if target.exists():
                    shutil.rmtree(target)
                try:
                    archive, _ = self.container.get_archive(folder)
                except NotFound:
                    continue
                build.extract_tar(b"".join(archive), run_dir)
        except (APIError, OSError, tarfile.TarError) as err:
            self.log_line(f"[launch-jupyter: could not copy the outputs out: {err}]")
            return found
        return build.collect_outputs(run_dir)

    def _close_stream(self) -> None:
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:
                pass

    def _release(self) -> None:
        """Remove the container (killing it if it still runs)."""
        if self.container is None:
            return
        try:
            self.container.remove(force=True)
        except Exception as err:
            log.debug("could not remove %s: %s", self.name, err)


class DockerRunner:
    """Runs each attempt in a container on the Docker engine of ``DOCKER_HOST``."""

    name = "docker"
    help = "a container on the agent's Docker engine (DOCKER_HOST), the image built per job"

    #: the agent's policy (the agent sets its own): every run's final options are checked
    policy: AgentPolicy = AgentPolicy()

    def __init__(self, client: Any = None) -> None:
        self._client = client
        self._stores = StoreConnections()
        self._runs: list[DockerRun] = []
        self._lock = threading.Lock()

    def client(self) -> Any:
        """The Docker client (created on first use). Raises LaunchError when unreachable."""
        with self._lock:
            if self._client is None:
                try:
                    import docker
                except ImportError:
                    raise LaunchError("the docker runner needs the docker SDK: "
                                      "pip install 'docker>=7.0'") from None
                try:
                    client = docker.from_env()
                    client.ping()
                except Exception as err:
                    where = os.environ.get("DOCKER_HOST") or "the default socket"
                    raise LaunchError(f"cannot reach the Docker engine at {where} ({err}); "
                                      "start dockerd or set DOCKER_HOST") from None
                self._client = client
            return self._client

    def store(self, url: str) -> Any:
        """The runner's own store connection for ``url`` (shared by its run threads)."""
        return self._stores.get(url)

    @classmethod
    def validate_queue_config(cls, config: dict[str, Any], values: dict[str, Any]) -> None:
        """The docker options the template gives with these values: privileged and host
        options only where the admin config allows them (LaunchError if not)."""
        try:
            container_options(render(config.get("template") or {}, values, {}),
                              config.get("admin") or {})
        except ImportError as err:
            raise LaunchError(f"docker queues need the docker SDK ({err}); install it with "
                              "pip install 'launch-jupyter[docker]'") from None

    def check(self, queue_config: dict) -> None:
        """Raise LaunchError when this machine cannot run the queue's items (no engine)."""
        self.client()

    def prepare(self) -> None:
        """Nothing to warm: the client connects on first use."""

    def close(self) -> None:
        """Stop watching runs (their containers keep going) and close the connections."""
        with self._lock:
            runs, self._runs = self._runs, []
        for run in runs:
            run.detach()
        for run in runs:
            run.thread.join(2.0)
        with self._lock:
            client, self._client = self._client, None
        self._stores.close()
        if client is not None:
            client.close()

    def _plan(self, request: RunRequest) -> tuple[build.ImagePlan, dict]:
        config = request.queue_config or {}
        plan = build.plan_image(request.job, request.files, config)
        macros = {"item_id": request.item["id"], "job": request.job.ref,
                  "queue": request.item["queue"], "image": plan.tag}
        template = render(config.get("template") or {}, request.item.get("template_values")
                          or {}, macros, self.policy.template_environment("docker"))
        if not isinstance(template, dict):
            raise LaunchError("the queue template must be a mapping")
        env = _template_mapping(template.pop("env", None), "env")
        labels = {k: v for k, v in _template_mapping(template.pop("labels", None),
                                                     "labels").items()
                  if not k.startswith(f"{LABEL}.")}
        options = container_options(template, config.get("admin") or {})
        self.policy.check_docker(options)  # the agent's fence: admin switches only narrow
        options["_env"] = env
        options["_labels"] = labels
        return plan, options

    def start(self, request: RunRequest) -> DockerRun:
        """Check the queue template (refusals happen here), then build and run in a thread."""
        plan, options = self._plan(request)
        self.client()  # an unreachable engine fails the start at once, with the reason
        if request.run_dir.exists():
            shutil.rmtree(request.run_dir)
        request.run_dir.mkdir(parents=True)
        run = DockerRun(self, request, plan=plan, options=options)
        self._track(run)
        return run

    def find(self, item_id: str, attempt: int | None = None) -> list[Any]:
        """Containers of ``item_id`` (and ``attempt``), found by label, running or not."""
        filters = [f"{LABEL}.item={item_id}"]
        if attempt is not None:
            filters.append(f"{LABEL}.attempt={attempt}")
        # A container removed while the list is read is gone, not an error.
        return self.client().containers.list(all=True, filters={"label": filters},
                                             ignore_removed=True)

    def adopt(self, request: RunRequest) -> DockerRun | None:
        """Take over the container of this attempt, if it is still there (None if not)."""
        found = self.find(request.item["id"], request.attempt)
        if not found:
            return None
        run = DockerRun(self, request, container=found[0])
        self._track(run)
        return run

    def _track(self, run: DockerRun) -> None:
        with self._lock:
            self._runs = [r for r in self._runs if not r.done()]
            self._runs.append(run)
        run.thread.start()
