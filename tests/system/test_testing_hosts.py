"""bayeux.testing's hosts clean up after themselves: a GranianProcess stopped as soon as it
started leaves no granian process behind (its worker, still importing the application when
the main process listens, outlived a stop that came then)."""

from __future__ import annotations

from pathlib import Path

from bayeux.testing import GranianProcess


def group_members(group: int) -> list[int]:
    """The processes of process group `group` (read from /proc: Linux)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:
            found.append(int(stat.parent.name))
    return found


def test_a_granian_stopped_at_once_leaves_no_process() -> None:
    for _ in range(2):
        running = GranianProcess().start()
        assert running.process is not None
        group = running.process.pid
        assert len(group_members(group)) >= 2  # granian and its worker
        running.stop()
        assert running.process.poll() is not None
        assert group_members(group) == []
