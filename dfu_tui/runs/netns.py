"""A local Ray instance that nothing beyond this machine can reach.

Ray's servers (GCS, raylet, the driver's and every worker's core worker) bind `0.0.0.0`
whatever `_node_ip_address` says. So a local run moves the process that starts Ray into a
network namespace of its own, whose only interface is loopback: whatever binds `0.0.0.0`
there is reachable from that namespace's `127.0.0.1` only, and Ray's processes, all started
from it, inherit it. Signals, `/proc` and files are unchanged (no pid or mount namespace).

As root (`CAP_SYS_ADMIN`) the calling thread moves at any time; any other user needs a user
namespace too (mapping their own uid and gid to themselves), which Linux grants only to a
process that has a single thread: the detached supervisor asks before it imports anything
that starts threads (`isolate_early`).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
from pathlib import Path

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

#: the outcome of this process's isolation: None before any attempt, "" when isolated, else
#: why it could not be (said in the run's events as a warning)
_outcome: str | None = None


def _unshare(flags: int) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        return ctypes.get_errno()
    return 0


def _threads() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


def _map_self() -> None:
    """In a new user namespace: our uid and gid stay what they are (nothing else maps)."""
    uid, gid = os.getuid(), os.getgid()
    for name, text in (
        ("setgroups", "deny"),
        ("uid_map", f"{uid} {uid} 1\n"),
        ("gid_map", f"{gid} {gid} 1\n"),
    ):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY | os.O_NOFOLLOW)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH22x", b"lo", 0)
        flags = struct.unpack("16sH22x", fcntl.ioctl(s, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(s, SIOCSIFFLAGS, struct.pack("16sH22x", b"lo", flags | IFF_UP))


def can_isolate_here() -> bool:
    """Whether this process can still get a network namespace of its own: as root at any
    time, as another user only while it has a single thread."""
    return os.geteuid() == 0 or _threads() == 1


def local_ray(kind: object, address: object) -> bool:
    """Whether `executor.kind` and `executor.address` ask for a new local Ray instance (no
    address, or "local")."""
    return kind == "ray" and address in (None, "", "local")


def interfaces(pid: int | str = "self") -> list[str]:
    """The network interfaces a process sees (its namespace's `/proc/PID/net/dev`)."""
    text = Path(f"/proc/{pid}/net/dev").read_text()
    return [line.split(":", 1)[0].strip() for line in text.splitlines()[2:] if ":" in line]


def isolate() -> str:
    """Move the calling thread (and all it starts from now on) into a new network namespace
    whose only interface, loopback, is up. Returns "" when done, else why not (nothing has
    changed then). Idempotent within a process."""
    global _outcome
    if _outcome == "":
        return ""
    if not Path("/proc/self/ns/net").exists():
        _outcome = "this system has no network namespaces"
        return _outcome
    code = _unshare(CLONE_NEWNET)
    if code == errno.EPERM and _threads() == 1:
        code = _unshare(CLONE_NEWUSER | CLONE_NEWNET)
        if code == 0:
            try:
                _map_self()
            except OSError as exc:
                code = exc.errno or errno.EPERM
    elif code == errno.EPERM:
        _outcome = (
            "a network namespace needs root, or a user namespace started before any thread "
            "(run it detached: --detach)"
        )
        return _outcome
    if code != 0:
        _outcome = f"cannot create a network namespace ({os.strerror(code)})"
        return _outcome
    try:
        _loopback_up()
    except OSError as exc:
        _outcome = f"cannot bring loopback up in the new network namespace ({exc.strerror})"
        return _outcome
    _outcome = ""
    return ""


def isolate_early(config_text: bytes) -> None:
    """At the start of a detached supervisor, still single-threaded: isolate when the run's
    config asks for a local Ray instance (the config is checked properly later; a config
    that cannot be read here simply is not isolated early)."""
    import tomllib

    try:
        doc = tomllib.loads(config_text.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return
    ex = doc.get("executor")
    if isinstance(ex, dict) and local_ray(ex.get("kind"), ex.get("address")):
        isolate()
