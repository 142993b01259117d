"""The README's and the getting-started page's command lines work in the order written, on a
fresh clone of the repository: `./serve` installs what the next lines use (the client), the
docs lines build and serve the site, the first exchange goes through. And examples/README.md
names every example.

The commands run in one bash, as a person types them: each line of a `sh` block as written
(its comment left out), a long-running server (`./serve`, `mkdocs serve`) in the background as
in a terminal of its own, the Python blocks of the README with the `.venv`'s Python. What is
not run is listed below with the reason. pip's cache is the user's, as for a person: the
downloads of an earlier run are reused, the installs are real.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ..helpers.http import request
from ..helpers.servers import ROOT

DOCUMENTS = ("README.md", "docs/getting-started.md")
# Lines and blocks not run here, and why.
SKIPPED_LINES = {"./run-tests": "the whole suite, this test included"}
SKIPPED_SECTIONS = {
    ("README.md", "Install"): "the package index's way (pip install bayeux-server, then its"
    " commands): test_package.py installs the built wheel with its client extra into a fresh"
    " environment and runs the server, bayeux-client and the suite from it",
    ("docs/getting-started.md", "From the package index"): "the same as the README's Install",
}
SKIPPED_PYTHON = {
    "from fastapi import FastAPI": "needs the reader's FastAPI application (pip install fastapi);"
    " examples/fastapi runs it in test_examples.py",
}
# Commands that serve until stopped: started in the background and waited for, on their port,
# until their log says they serve.
SERVERS = {
    "./serve": (8080, "serving http://127.0.0.1:8080/cometd"),
    ".venv/bin/mkdocs serve": (8000, "Serving on http://127.0.0.1:8000/"),
}
INSTALL_SECONDS = 600  # ./serve's first run and the docs' install: fresh virtual environments
STEP_SECONDS = 120


@dataclass
class Step:
    document: str
    section: str
    kind: str  # "sh" or "python"
    text: str


def steps_of(root: Path, document: str) -> list[Step]:
    """The command lines and Python blocks of `document`, in order, with their section."""
    steps: list[Step] = []
    section = ""
    fence: str | None = None
    block: list[str] = []
    for line in (root / document).read_text().splitlines():
        if fence is None:
            heading = re.match(r"#{2,3} (.+)", line)
            if heading:
                section = heading.group(1).strip()
            opening = re.match(r"```(\w*)", line)
            if opening:
                fence, block = opening.group(1), []
            continue
        if line.startswith("```"):
            if fence == "sh":
                for command in block:
                    command = re.sub(r"\s+#\s.*$", "", command).strip()
                    if command:
                        steps.append(Step(document, section, "sh", command))
            elif fence == "python":
                steps.append(Step(document, section, "python", "\n".join(block) + "\n"))
            fence = None
            continue
        block.append(line)
    return steps


def skip_reason(step: Step) -> str | None:
    reason = SKIPPED_SECTIONS.get((step.document, step.section))
    if reason is not None:
        return reason
    if step.kind == "sh":
        return SKIPPED_LINES.get(step.text)
    for start, why in SKIPPED_PYTHON.items():
        if step.text.startswith(start):
            return why
    return None


class Shell:
    """One bash reading lines as a terminal would, its output read as it comes."""

    def __init__(self, cwd: Path, logs: Path) -> None:
        venv = str(ROOT / ".venv")
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        # The suite's own .venv is not on the reader's PATH.
        env["PATH"] = os.pathsep.join(
            p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(venv)
        )
        self.logs = logs
        self.process = subprocess.Popen(
            ["bash", "--norc", "--noprofile"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
            start_new_session=True,  # its process group: everything it started, stopped at once
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.transcript: list[str] = []

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.rstrip("\n"))
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text)
        self.process.stdin.flush()

    def run(self, command: str, timeout: float = STEP_SECONDS) -> tuple[int, str]:
        """Runs `command` in the shell (its standard input empty); its status and output."""
        marker = f"__done_{uuid.uuid4().hex}__"
        self.transcript.append(f"$ {command}")
        self._send(f"{{ {command}\n}} </dev/null\necho {marker} $?\n")
        output: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(
                    f"{command!r} still running after {timeout} s:\n" + "\n".join(output[-40:])
                ) from None
            if line is None:
                raise AssertionError(f"the shell ended during {command!r}:\n" + "\n".join(output))
            if line.startswith(marker):
                self.transcript.extend(output[-20:])
                return int(line.split()[1]), "\n".join(output)
            output.append(line)

    def background(self, command: str, name: str) -> tuple[int, Path]:
        """Starts `command` in the background, its output to a log file: its pid and log."""
        log = self.logs / f"{name}.log"
        status, pid = self.run(f"{command} >{log} 2>&1 &\necho $!")
        assert status == 0, pid
        return int(pid.strip().splitlines()[-1]), log

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, 15)
        except ProcessLookupError:
            return
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait(10)


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_server(pid: int, log: Path, port: int, says: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            raise AssertionError(f"it exited:\n{log.read_text()[-4000:]}")
        if port_open(port) and says in log.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"not serving after {timeout} s:\n{log.read_text()[-4000:]}")


def stop_server(pid: int, port: int) -> None:
    """Stops a server this test started and waits for its port. SIGTERM, not Ctrl-C's SIGINT:
    a command bash starts in the background without job control ignores SIGINT."""
    if alive(pid):
        os.kill(pid, 15)
    deadline = time.monotonic() + 30
    while (alive(pid) or port_open(port)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not port_open(port), f"port {port} still open"


@pytest.fixture
def clone() -> Iterator[Path]:
    """A fresh clone of the repository (its committed state) in a temporary directory."""
    top = Path(tempfile.mkdtemp(prefix="bayeux-readme-"))
    try:
        subprocess.run(
            ["git", "clone", "--quiet", str(ROOT), str(top / "bayeux")],
            check=True,
            timeout=120,
        )
        (top / "logs").mkdir()
        yield top / "bayeux"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def ports_free(*ports: int, within: float = 60) -> None:
    """The documented ports must be free (another server there would answer in our place)."""
    deadline = time.monotonic() + within
    while any(port_open(p) for p in ports):
        if time.monotonic() > deadline:
            busy = [p for p in ports if port_open(p)]
            raise AssertionError(f"ports {busy} are in use: the documented commands need them")
        time.sleep(1)


@pytest.mark.slow
def test_the_readme_and_getting_started_commands_work_in_order_on_a_fresh_clone(
    clone: Path,
) -> None:
    ports_free(8080, 8000)
    shell = Shell(clone, clone.parent / "logs")
    servers: list[tuple[int, int]] = []
    ran: list[str] = []
    skipped: list[tuple[str, str]] = []
    try:
        for document in DOCUMENTS:
            subscriber_log: Path | None = None
            for index, step in enumerate(steps_of(clone, document)):
                reason = skip_reason(step)
                if reason is not None:
                    skipped.append((step.text.splitlines()[0], reason))
                    continue
                ran.append(step.text.splitlines()[0])
                name = f"{Path(document).stem}-{index}"
                if step.kind == "python":
                    # Saved where nothing shadows the installed package (the clone's
                    # parent holds a directory called bayeux: the clone).
                    script = clone.parent / "logs" / f"{name}.py"
                    script.write_text(step.text)
                    status, output = shell.run(f".venv/bin/python {script}", timeout=60)
                    assert status == 0, (step.text, output)
                    if "bayeux.client" in step.text:
                        # The README's client: its subscription gets its own publish back.
                        assert "'data': {'text': 'hello'}" in output, output
                elif step.text in SERVERS:
                    port, says = SERVERS[step.text]
                    pid, log = shell.background(step.text, name)
                    servers.append((pid, port))
                    wait_for_server(pid, log, port, says, INSTALL_SECONDS)
                    check_server(step.text)
                elif step.text.endswith("&"):
                    pid, subscriber_log = shell.background(step.text[:-1].rstrip(), name)
                    time.sleep(2)  # as a person types the next line
                    assert alive(pid), subscriber_log.read_text()
                else:
                    status, output = shell.run(step.text, timeout=INSTALL_SECONDS)
                    assert status == 0, (step.text, output)
                    if " publish " in step.text and subscriber_log is not None:
                        assert '"successful": true' in output, output
                        delivered(shell, step.text, subscriber_log)
            # The next document starts from a machine where nothing serves.
            for pid, port in servers:
                stop_server(pid, port)
            servers.clear()
    finally:
        shell.close()
    print("ran:", *ran, sep="\n  ")
    print("not run:", *(f"{line}: {why}" for line, why in skipped), sep="\n  ")
    assert ran.count("./serve") == 2 and ".venv/bin/mkdocs serve" in ran
    assert any(line.startswith("bayeux-client") for line in ran)


def check_server(command: str) -> None:
    if command == "./serve":
        page = request(
            "http://127.0.0.1:8080/cometd", "GET", headers={"Accept": "text/html"}, timeout=10
        )
        assert page.status == 200 and b"Bayeux 1.0" in page.body
    else:
        site = request("http://127.0.0.1:8000/getting-started/", "GET", timeout=30)
        assert site.status == 200 and b"A first exchange" in site.body


def delivered(shell: Shell, publish: str, subscriber_log: Path) -> None:
    """The subscriber printed the message. A subscriber slower to start than the two seconds
    given to it misses a publish, as it would a person's: the line is run again then, twice at
    most."""
    for attempt in range(3):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if '"text": "hi"' in subscriber_log.read_text():
                return
            time.sleep(0.1)
        if attempt < 2:
            status, output = shell.run(publish)
            assert status == 0, output
    raise AssertionError(f"the subscriber printed no message:\n{subscriber_log.read_text()}")


def test_examples_readme_names_every_example() -> None:
    listing = (ROOT / "examples" / "README.md").read_text()
    examples = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in (ROOT / "examples").iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.stem != "__init__")
    )
    assert examples, "no examples found"
    for example in examples:
        assert f"`{example}`" in listing, example
    # Every command names a file that is there.
    for path in re.findall(r"examples/[\w/]+\.py", listing):
        assert (ROOT / path).is_file(), path
    for module in re.findall(r"uvicorn (examples\.[\w.]+):app", listing):
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module
