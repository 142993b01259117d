"""The open-file limit against --max-connections (issue 34): the server says at start when its
limit is lower, and a process out of files pauses accepting, then serves again once files are
free (Tornado's accept handler let EMFILE escape into the loop, logged with a traceback each
time, and a client coming after the others had closed got no answer)."""

from __future__ import annotations

import resource
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bayeux.testing import start_cli, stop_process

from ..helpers.http import handshake


def _open_files(limit: int) -> Callable[[], None]:
    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return limited


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100


def test_the_server_says_at_start_when_its_open_file_limit_is_below_max_connections() -> None:
    process, url = start_cli(
        "--max-connections", "1000", log_level="info", stderr=subprocess.PIPE,
        preexec_fn=_open_files(300),
    )  # fmt: skip
    stop_process(process)
    assert process.stderr is not None
    text = process.stderr.read().decode()
    assert "WARNING" in text
    assert "open-file limit is 300" in text and "--max-connections 1000" in text
    # Within the limit: nothing said.
    process, url = start_cli(
        "--max-connections", "200", log_level="info", stderr=subprocess.PIPE,
        preexec_fn=_open_files(300),
    )  # fmt: skip
    stop_process(process)
    assert process.stderr is not None
    assert "open-file limit" not in process.stderr.read().decode()


def test_a_process_out_of_files_pauses_accepting_and_serves_again_once_some_close() -> None:
    process, url = start_cli(
        "--max-connections", "1000", "--max-handshakes-per-address", "-1",
        stderr=subprocess.PIPE, preexec_fn=_open_files(100),
    )  # fmt: skip
    port = int(url.split(":")[2].split("/")[0])
    held = []
    try:
        for _ in range(140):  # past the limit: the last ones wait in the listen queue
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = _cpu_seconds(process.pid)
        time.sleep(2.0)
        spent = _cpu_seconds(process.pid) - before
        assert spent < 0.5, f"{spent:.2f} s of CPU in 2 s while out of files"
        for sock in held[:80]:
            sock.close()
        del held[:80]
        time.sleep(1.0)  # accepting resumed: the queued ones are served, and new ones
        assert handshake(url)  # a clientId: served
    finally:
        for sock in held:
            sock.close()
        stop_process(process)
    assert process.stderr is not None
    log = process.stderr.read().decode()
    assert "cannot accept connections" in log
    assert log.count("Traceback") == 0
