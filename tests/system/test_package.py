"""The package as users get it: `python -m build` makes an sdist and a wheel, and the wheel,
installed into a fresh virtual environment outside the source tree, serves real clients and runs
the conformance suite."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import venv
import zipfile
from pathlib import Path

import pytest

from bayeux import __version__
from bayeux.testing import free_port, stop_process, wait_for_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv (outside the checkout) with the built wheel installed."""
    work = tmp_path_factory.mktemp("package")
    dist = work / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("bayeux_server-*.whl")
    assert len(list(dist.glob("bayeux_server-*.tar.gz"))) == 1
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "bayeux/py.typed" in names
    assert "bayeux/schema/bayeux-1.0.schema.json" in names
    # The Redis engine's Lua scripts are data files of their own.
    scripts = {str(p.relative_to(ROOT)) for p in (ROOT / "bayeux").rglob("*.lua")}
    assert scripts and scripts <= names, sorted(scripts - names)
    # Every module of the package is shipped (bayeux.engines once was not).
    modules = {str(p.relative_to(ROOT)) for p in (ROOT / "bayeux").rglob("*.py")}
    assert modules <= names, sorted(modules - names)
    env = work / "venv"
    venv.create(env, with_pip=True)
    subprocess.run(
        # With the client's extra: bayeux-client talks to the installed server below.
        [str(env / "bin" / "python"), "-m", "pip", "install", "--quiet", f"{wheel}[client]"],
        check=True,
        capture_output=True,
        cwd=work,
    )
    return env / "bin"


def run(bin_dir: Path, *command: str) -> str:
    done = subprocess.run(
        [str(bin_dir / command[0]), *command[1:]],
        check=True,
        capture_output=True,
        text=True,
        cwd=bin_dir.parent.parent,  # outside the source tree
    )
    return done.stdout


def test_wheel_is_named_and_versioned(installed: Path) -> None:
    assert run(installed, "bayeux", "--version").strip() == f"bayeux {__version__}"
    assert run(installed, "bayeux-spec-tests", "--version").strip() == (
        f"bayeux-spec-tests {__version__}"
    )
    assert "--max-queue-bytes" in run(installed, "bayeux", "--help")
    where = run(installed, "python", "-c", "import bayeux; print(bayeux.__file__)")
    assert str(ROOT) not in where and "site-packages" in where
    metadata = run(
        installed,
        "python",
        "-c",
        "import importlib.metadata as m; print(m.version('bayeux-server'))",
    )
    assert metadata.strip() == __version__


def test_installed_server_serves_a_real_client_and_passes_the_suite(installed: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(installed / "bayeux"), "--port", str(port), "--log-level", "warning"],
        cwd=installed.parent.parent,
    )
    try:
        wait_for_port(port, server)
        url = f"http://127.0.0.1:{port}/cometd"

        # The installed client command, subscribed, gets what the installed command publishes.
        subscriber = subprocess.Popen(
            [str(installed / "bayeux-client"), url, "subscribe", "/installed"]
            + ["--count", "1", "--seconds", "20"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=installed.parent.parent,
        )
        deadline = time.monotonic() + 20
        while subscriber.poll() is None and time.monotonic() < deadline:
            reply = run(installed, "bayeux-client", url, "publish", "/installed", '{"ok": true}')
            assert json.loads(reply)["successful"] is True
            time.sleep(0.3)
        out, _ = subscriber.communicate(timeout=10)
        assert subscriber.returncode == 0
        message = json.loads(out.splitlines()[0])
        assert message["channel"] == "/installed" and message["data"] == {"ok": True}
        # The installed suite, from the installed package, finds the installed server conformant.
        suite = subprocess.run(
            [
                str(installed / "bayeux-spec-tests"),
                url,
                "--transport",
                "long-polling",
                "--profile",
                "core",
                "--only",
                "handshake.",
            ],
            capture_output=True,
            text=True,
            cwd=installed.parent.parent,
        )
        assert suite.returncode == 0, suite.stdout + suite.stderr
        assert "pass" in suite.stdout
    finally:
        assert stop_process(server) == 0
