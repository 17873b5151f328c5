"""The agent's own policy: what a queue's config may make happen on this agent's host.

It is read from the agent's LaunchConfig (its config file and ``LAUNCH_JUPYTER_*``
variables), never from the store, so whoever can create a queue cannot widen it; a queue's
``admin:`` switches can only narrow it. The runners check each item's FINAL container
options or Job manifest (after every merge and render) against it before anything starts; a
refusal names the setting and the policy key that would allow it (docs/security.md).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import LaunchError
from . import pod_security

#: the ``${...}`` names every template may use: filled in by the agent, never the environment
ITEM_MACROS = ("item_id", "job", "queue", "image")
WHERE = ("the agent's policy: set it in the agent's jupyter_launch_config.py or its "
         "LAUNCH_JUPYTER_* environment (docs/security.md)")


class PolicyError(LaunchError):
    """A run needs more than the agent's policy allows (the message names the policy key)."""


def _needs(setting: str, key: str, value: str) -> PolicyError:
    return PolicyError(f"{setting} needs LaunchConfig.{key} to allow {value!r} ({WHERE})")


@dataclass(frozen=True)
class AgentPolicy:
    """What queue templates may use on this agent; the defaults are the safe policy."""

    kubeconfig: str = ""
    kubernetes_context: str = ""
    kubernetes_namespaces: tuple[str, ...] = ()
    kubernetes_service_accounts: tuple[str, ...] = ()
    pod_security: str = "restricted"
    docker_volume_prefixes: tuple[str, ...] = ()
    docker_writable_volume_prefixes: tuple[str, ...] = ()
    docker_networks: tuple[str, ...] = ()
    template_env: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Any) -> AgentPolicy:
        """The policy of an agent whose LaunchConfig is ``config`` (None: the safe default)."""
        if config is None:
            return cls()
        return cls(
            kubeconfig=config.kubeconfig, kubernetes_context=config.kubernetes_context,
            kubernetes_namespaces=tuple(config.kubernetes_namespaces),
            kubernetes_service_accounts=tuple(config.kubernetes_service_accounts),
            pod_security=config.pod_security,
            docker_volume_prefixes=tuple(config.docker_volume_prefixes),
            docker_writable_volume_prefixes=tuple(config.docker_writable_volume_prefixes),
            docker_networks=tuple(config.docker_networks),
            template_env=tuple(config.template_env))

    def allows_level(self, level: str) -> bool:
        """Whether runs may go down to ``level`` ("restricted" < "baseline" < "privileged")."""
        return (pod_security.LEVELS.index(level)
                <= pod_security.LEVELS.index(self.pod_security))

    def _level(self, setting: str, level: str) -> None:
        if not self.allows_level(level):
            raise PolicyError(f"{setting} needs LaunchConfig.pod_security to be {level!r} or "
                              f"lower (it is {self.pod_security!r}; {WHERE})")

    # -- ${NAME} in templates ---------------------------------------------------------------

    def template_environment(self, runner: str) -> TemplateEnv:
        """What ``${NAME}`` may read on this agent, for a template of ``runner``."""
        return TemplateEnv(self, runner)

    def redact(self, text: str) -> str:
        """``text`` with the value of every variable ``${NAME}`` may read replaced by its
        ``${NAME}``: rendered values are never echoed in errors or logs."""
        values = {name: os.environ[name] for name in self.template_env if name in os.environ}
        for name, value in sorted(values.items(), key=lambda kv: -len(kv[1])):
            if len(value) >= 2:
                text = text.replace(value, f"${{{name}}}")
        return text

    # -- docker -----------------------------------------------------------------------------

    def check_docker(self, options: Mapping[str, Any]) -> None:
        """Refuse final ``containers.create`` options the policy does not allow."""
        if options.get("privileged"):
            self._level("privileged mode", "privileged")
        for cap in options.get("cap_add") or []:
            name = str(cap).upper().removeprefix("CAP_")
            if name not in pod_security.BASELINE_CAPABILITIES:
                self._level(f"cap_add {cap!r}", "privileged")
            elif name not in pod_security.RESTRICTED_CAPABILITIES:
                self._level(f"cap_add {cap!r}", "baseline")
        for key in ("pid_mode", "ipc_mode", "uts_mode", "userns_mode", "cgroupns"):
            if options.get(key) == "host":
                self._level(f"the host {key.split('_')[0].upper()} namespace", "privileged")
        if options.get("devices"):
            self._level(f"devices {', '.join(map(str, options['devices']))}", "privileged")
        network = options.get("network_mode") or options.get("network")
        if network not in (None, "", "default", "none", "bridge") \
                and network not in self.docker_networks:
            raise _needs(f"network {network}", "docker_networks", str(network))
        for host, bind, mode in _binds(options.get("volumes")):
            if {"z", "Z"} & set(mode):  # relabels the host's files for the container
                self._level(f"volume {host}:{bind}:{','.join(mode)} (SELinux relabel)",
                            "privileged")
            self._check_volume(host, bind, "ro" not in mode)

    def _check_volume(self, host: str, bind: str, writable: bool) -> None:
        shown = f"{host}:{bind}" + ("" if writable else ":ro")
        if not host.startswith("/"):  # a named docker volume
            allowed = set(self.docker_writable_volume_prefixes)
            if not writable:
                allowed |= set(self.docker_volume_prefixes)
            if host not in allowed:
                key = ("docker_writable_volume_prefixes" if writable
                       else "docker_volume_prefixes")
                raise _needs(f"volume {shown}", key, host)
            return
        # What the engine will mount: '..' collapsed, symlinks followed (the agent's host is
        # the engine's host: DOCKER_HOST on another machine is not checked against its files)
        path = os.path.realpath(posixpath.normpath(host))
        if _under(path, self.docker_writable_volume_prefixes):
            return
        if not writable and _under(path, self.docker_volume_prefixes):
            return
        if writable and _under(path, self.docker_volume_prefixes):
            raise PolicyError(f"volume {shown} is read-write, but LaunchConfig."
                              f"docker_writable_volume_prefixes does not allow {path!r} "
                              f"(mount it ':ro', or widen {WHERE})")
        key = "docker_writable_volume_prefixes" if writable else "docker_volume_prefixes"
        raise _needs(f"volume {shown}" + (f" (resolved to {path})" if path != host else ""),
                     key, path)

    # -- kubernetes -------------------------------------------------------------------------

    def check_job(self, job: Mapping[str, Any], context_namespace: str) -> None:
        """Refuse a final Job manifest the policy does not allow: its namespace, service
        account and Pod Security Standard level (every container, init and sidecar too)."""
        namespace = str((job.get("metadata") or {}).get("namespace") or context_namespace)
        allowed = self.kubernetes_namespaces or (context_namespace,)
        if namespace != context_namespace and namespace not in allowed and "*" not in allowed:
            raise _needs(f"namespace {namespace}", "kubernetes_namespaces", namespace)
        template = ((job.get("spec") or {}).get("template") or {})
        pod = template.get("spec") or {}
        account = pod.get("serviceAccountName") or pod.get("serviceAccount")
        if account and account not in self.kubernetes_service_accounts:
            raise _needs(f"service account {account}", "kubernetes_service_accounts",
                         str(account))
        projected = [v.get("name") for v in pod.get("volumes") or [] if isinstance(v, Mapping)
                     for source in (v.get("projected") or {}).get("sources") or []
                     if isinstance(source, Mapping) and "serviceAccountToken" in source]
        if not account and (pod.get("automountServiceAccountToken") is not False or projected):
            raise PolicyError("a pod without a service account must not mount the default "
                              "one's token (automountServiceAccountToken: false, no projected "
                              "serviceAccountToken volume); set service_account to one "
                              "LaunchConfig.kubernetes_service_accounts allows")
        annotations = (template.get("metadata") or {}).get("annotations") or {}
        found = pod_security.violations(pod, self.pod_security, annotations)
        if found:
            needed = pod_security.level_of(pod, annotations)
            raise PolicyError(f"the pod breaks the {self.pod_security!r} Pod Security "
                              f"Standard: {'; '.join(found[:4])}; it needs "
                              f"LaunchConfig.pod_security to be {needed!r} ({WHERE})")


class TemplateEnv:
    """The agent's environment as ``${NAME}`` in a template may read it: only the names the
    policy lists, and on Kubernetes none that looks like a secret (it would be written into
    the Job manifest)."""

    def __init__(self, policy: AgentPolicy, runner: str) -> None:
        self.policy = policy
        self.runner = runner

    def __call__(self, name: str) -> str:
        """The value of ``${name}``; PolicyError (never showing a value) when refused."""
        if name not in self.policy.template_env:
            raise PolicyError(
                f"the queue template names ${{{name}}}, which is neither an item macro "
                f"(${{{'}, ${'.join(ITEM_MACROS)}}}) nor an environment variable "
                f"LaunchConfig.template_env allows ({WHERE})")
        if self.runner == "kubernetes":
            from ..jobs.secrets import looks_like_secret

            if looks_like_secret(name):
                raise PolicyError(
                    f"the queue template names ${{{name}}}, which looks like a secret: its "
                    f"value would be written into the Job manifest; use a secretKeyRef "
                    f"(env: {{NAME: {{secretKeyRef: {{name: SECRET, key: KEY}}}}}}) instead")
        if name not in os.environ:
            raise PolicyError(f"the queue template names ${{{name}}}, which is not set in "
                              "the agent's environment")
        return os.environ[name]


def _under(path: str, prefixes: Iterable[str]) -> bool:
    for prefix in prefixes:
        if not prefix.startswith("/"):
            continue
        base = os.path.realpath(posixpath.normpath(prefix))
        if path == base or path.startswith(base.rstrip("/") + "/"):
            return True
    return False


def _binds(volumes: Any) -> list[tuple[str, str, list[str]]]:
    """(host path or volume name, container path, mode options) of docker-py ``volumes``."""
    out = []
    if isinstance(volumes, Mapping):
        for host, spec in volumes.items():
            spec = spec if isinstance(spec, Mapping) else {"bind": str(spec)}
            mode = str(spec.get("mode") or "rw")
            out.append((str(host), str(spec.get("bind") or ""), mode.split(",")))
    else:
        for entry in volumes or []:
            parts = str(entry).split(":")
            if len(parts) == 1:  # an anonymous volume: engine-managed, no host path
                continue
            if len(parts) > 3:  # a ':' smuggled in through a {{value}}
                raise PolicyError(f"volume {entry!r} is not HOST:CONTAINER[:MODE]; remove "
                                  "the extra ':'")
            out.append((parts[0], parts[1], (parts[2] if len(parts) > 2 else "rw").split(",")))
    return out
