"""The TCP sockets of this process on a port, found in Linux's /proc: how a draining serving
process reaches the listening socket and the connections that Robyn keeps to itself."""

from __future__ import annotations

import os
import socket
from pathlib import Path

LISTEN = "0A"
ESTABLISHED = "01"


def _inodes(port: int, state: str) -> set[str]:
    """Inodes of the sockets bound to local `port` in `state`, in this network namespace."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == state and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def descriptors(port: int, state: str) -> list[int]:
    """This process's file descriptors of sockets on local `port` in `state`."""
    inodes = {f"socket:[{inode}]" for inode in _inodes(port, state)}
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") in inodes:
                found.append(int(fd))
        except OSError:
            continue  # closed meanwhile
    return found


def sockets(port: int, state: str) -> list[socket.socket]:
    """This process's sockets on local `port` in `state`, each a duplicate of the descriptor
    its owner holds: shutting one down acts on the shared socket, closing it does not."""
    found = []
    for fd in descriptors(port, state):
        try:
            found.append(socket.socket(fileno=os.dup(fd)))
        except OSError:
            continue  # closed meanwhile
    return found


def shutdown(port: int, state: str, how: int) -> int:
    """Shuts down (`socket.SHUT_RD`, `SHUT_RDWR`) this process's sockets on `port` in `state`;
    returns how many."""
    found = sockets(port, state)
    for s in found:
        try:
            s.shutdown(how)
        except OSError:
            pass  # the peer is already gone
        finally:
            s.close()
    return len(found)


def threads() -> dict[int, str]:
    """This process's threads: native id → name (`comm`, 15 bytes at most). A thread that
    does not name itself has the name of the thread that started it."""
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            found[int(tid)] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
    return found
