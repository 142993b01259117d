"""The open-file limit against `--max-connections`: every connection is a file, so a process
whose limit is lower fails to accept (EMFILE) before its own bound refuses anyone."""

from __future__ import annotations

import resource

# Files a server process holds besides its clients' connections: listening sockets, Redis
# connections (the command pool and two more), the loop's own, logs, modules being read.
SPARE_FILES = 64


def raise_open_file_limit() -> tuple[int, int]:
    """Raises this process's soft open-file limit to its hard limit (the soft one is often
    1024 where the hard one is far higher); the limits (soft, hard) then."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft, hard


def open_file_shortfall(max_connections: int) -> str | None:
    """Raises the soft limit as far as it goes; then, if the process still cannot hold
    `max_connections` connections and its own files, what to tell the operator."""
    soft, hard = raise_open_file_limit()
    if soft == resource.RLIM_INFINITY or max_connections + SPARE_FILES <= soft:
        return None
    return (
        f"the open-file limit is {soft} (hard limit {hard}), below --max-connections"
        f" {max_connections} plus the {SPARE_FILES} files the server needs itself: past about"
        f" {max(0, soft - SPARE_FILES)} connections a process cannot accept more (they wait"
        " in the listen queue, then are refused). Raise the limit (ulimit -n, systemd"
        " LimitNOFILE=, Docker --ulimit nofile=) or lower --max-connections"
    )
