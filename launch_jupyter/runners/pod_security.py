"""The Kubernetes Pod Security Standards ("baseline" and "restricted") as checks of a pod.

https://kubernetes.io/docs/concepts/security/pod-security-standards/ : ``violations(pod,
level)`` lists what a pod spec (and its template's annotations) does that ``level`` forbids,
for every container (init, sidecar and ephemeral ones too). Values are compared exactly, so
look-alike spellings ("Unconfіned" with a Cyrillic i) fail the allowlists instead of passing
a denylist.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

LEVELS = ("restricted", "baseline", "privileged")

#: capabilities "baseline" lets a container add
BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})
#: the one capability "restricted" lets a container add (after dropping ALL)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"})
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t",
                           "container_engine_t"})
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                                "persistentVolumeClaim", "projected", "secret"})
SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_TYPES = frozenset({"RuntimeDefault", "Localhost"})
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"


def _map(value: Any) -> Mapping:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def containers(pod: Mapping) -> Iterator[tuple[str, Mapping]]:
    """(where, container) for every container of the pod, init and ephemeral ones too."""
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for i, container in enumerate(_list(pod.get(key))):
            container = _map(container)
            yield f"{key}[{i}] ({container.get('name', '?')})", container


def _baseline(pod: Mapping, annotations: Mapping) -> Iterator[str]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key) not in (None, False):
            yield f"{key}: {pod[key]!r} (host namespaces)"
    pod_ctx = _map(pod.get("securityContext"))
    contexts = [("pod securityContext", pod_ctx)] + [
        (f"{where} securityContext", _map(c.get("securityContext")))
        for where, c in containers(pod)]
    for where, ctx in contexts:
        if _map(ctx.get("windowsOptions")).get("hostProcess") not in (None, False):
            yield f"{where}.windowsOptions.hostProcess (a HostProcess pod)"
        seccomp = _map(ctx.get("seccompProfile")).get("type")
        if seccomp is not None and seccomp not in SECCOMP_TYPES:
            yield f"{where}.seccompProfile.type: {seccomp!r} (not RuntimeDefault or Localhost)"
        apparmor = _map(ctx.get("appArmorProfile")).get("type")
        if apparmor is not None and apparmor not in APPARMOR_TYPES:
            yield f"{where}.appArmorProfile.type: {apparmor!r} (not RuntimeDefault or Localhost)"
        selinux = _map(ctx.get("seLinuxOptions"))
        if selinux.get("type") not in (None, *SELINUX_TYPES):
            yield f"{where}.seLinuxOptions.type: {selinux['type']!r}"
        for key in ("user", "role"):
            if selinux.get(key) not in (None, ""):
                yield f"{where}.seLinuxOptions.{key} (a custom SELinux {key})"
    for sysctl in _list(pod_ctx.get("sysctls")):
        name = _map(sysctl).get("name")
        if name not in SAFE_SYSCTLS:
            yield f"pod securityContext.sysctls: {name!r} (not a safe sysctl)"
    for where, container in containers(pod):
        ctx = _map(container.get("securityContext"))
        if ctx.get("privileged") not in (None, False):
            yield f"{where} securityContext.privileged: {ctx['privileged']!r}"
        for cap in _list(_map(ctx.get("capabilities")).get("add")):
            if cap not in BASELINE_CAPABILITIES:
                yield f"{where} securityContext.capabilities.add: {cap!r}"
        if ctx.get("procMount") not in (None, "Default"):
            yield f"{where} securityContext.procMount: {ctx['procMount']!r}"
        for port in _list(container.get("ports")):
            if _map(port).get("hostPort") not in (None, 0):
                yield f"{where} ports.hostPort: {_map(port)['hostPort']!r}"
    for volume in _list(pod.get("volumes")):
        if _map(volume).get("hostPath") is not None:
            yield f"volume {_map(volume).get('name')!r}: hostPath"
    for key, value in annotations.items():
        if str(key).startswith(APPARMOR_ANNOTATION) and value != "runtime/default" \
                and not str(value).startswith("localhost/"):
            yield f"annotation {key}: {value!r} (AppArmor not runtime/default or localhost/*)"


def _restricted(pod: Mapping) -> Iterator[str]:
    pod_ctx = _map(pod.get("securityContext"))
    for volume in _list(pod.get("volumes")):
        volume = _map(volume)
        kinds = [k for k in volume if k != "name"]
        if any(k not in RESTRICTED_VOLUMES for k in kinds):
            yield (f"volume {volume.get('name')!r}: type {', '.join(kinds)} (allowed: "
                   f"{', '.join(sorted(RESTRICTED_VOLUMES))})")
    if pod_ctx.get("runAsNonRoot") is False:
        yield "pod securityContext.runAsNonRoot: false"
    if pod_ctx.get("runAsUser") == 0:
        yield "pod securityContext.runAsUser: 0 (root)"
    pod_seccomp = _map(pod_ctx.get("seccompProfile")).get("type")
    for where, container in containers(pod):
        ctx = _map(container.get("securityContext"))
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield (f"{where} securityContext.allowPrivilegeEscalation: "
                   f"{ctx.get('allowPrivilegeEscalation')!r} (must be false)")
        caps = _map(ctx.get("capabilities"))
        if "ALL" not in _list(caps.get("drop")):
            yield (f"{where} securityContext.capabilities.drop: {caps.get('drop')!r} "
                   "(must drop ALL)")
        for cap in _list(caps.get("add")):
            if cap not in RESTRICTED_CAPABILITIES:
                yield f"{where} securityContext.capabilities.add: {cap!r}"
        if ctx.get("runAsNonRoot") is False:
            yield f"{where} securityContext.runAsNonRoot: false"
        if ctx.get("runAsUser") == 0:
            yield f"{where} securityContext.runAsUser: 0 (root)"
        seccomp = _map(ctx.get("seccompProfile")).get("type", pod_seccomp)
        if seccomp not in SECCOMP_TYPES:
            yield (f"{where} seccompProfile.type: {seccomp!r} (must be RuntimeDefault or "
                   "Localhost, on the pod or the container)")


def violations(pod: Mapping, level: str, annotations: Mapping | None = None) -> list[str]:
    """What ``pod`` (a PodSpec; ``annotations`` of its template) does that ``level`` forbids."""
    if level == "privileged":
        return []
    found = list(_baseline(pod, _map(annotations)))
    if level == "restricted":
        found += [v for v in _restricted(pod) if v not in found]
    return found


def level_of(pod: Mapping, annotations: Mapping | None = None) -> str:
    """The most restrictive level ``pod`` meets."""
    for level in LEVELS:
        if not violations(pod, level, annotations):
            return level
    return "privileged"
