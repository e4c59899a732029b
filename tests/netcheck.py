"""Count this process's client connections to a local port (Linux /proc), for leak checks.

The fake registry runs in the test process, so counting file descriptors would also count
the server's side of each connection, which it only notices closed on its next write. A
client socket is told apart by its *remote* port being the registry's.
"""

from __future__ import annotations

import os


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # closed between listdir and readlink
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def client_connections(port: int) -> int:
    """Open sockets of this process whose remote end is 127.0.0.1:``port`` (any TCP state)."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as lines:
                next(lines)
                for line in lines:
                    fields = line.split()
                    remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                    if remote_port == port and fields[9] in mine:
                        count += 1
        except FileNotFoundError:
            continue
    return count
