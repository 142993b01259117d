"""The reference's docstrings are true: every public class, function, method and property (as
docs/hooks.py's PUBLIC finds them, tests/helpers/public_api.py) shows an example; every example
runs under doctest and prints what it says; a docstring's `Args:` names the parameters the code
has; the callbacks of the client are called with the arguments their docstrings give; and every
`from bayeux... import ...` in the documentation imports.

Each docstring's examples run in a fresh namespace: what the module defining the object has
(doctest's rule), the package's public names (`from bayeux import *`) and `bayeux` itself,
`server` (a new `BayeuxServer` with default settings), `request` (the `RequestContext` a
handshake policy saw, as RequestContext's docstring describes it) and, for the Publisher's,
`redis_url` (a redis-server of their own). Anything else they use, they import. An example that
needs a server to talk to starts one with `bayeux.testing.ServerThread` (on 127.0.0.1; no other
network, and no sleeping). An example fails if it logs an error, or leaves a thread or a
process running.
The server's listener registrations are checked the same way by
tests/core/test_listener_signatures.py.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import bayeux
from bayeux.client import SyncClient
from bayeux.testing import ServerThread, child_pids

from ..helpers.public_api import ROOT, PublicName, public_names
from ..helpers.redisproc import RedisServer

NAMES = public_names()
PARSER = doctest.DocTestParser()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def examples_of(name: PublicName) -> list[doctest.Example]:
    return PARSER.get_examples(name.doc) if name.doc else []


def with_examples() -> list[PublicName]:
    """The public names whose docstring has examples, each docstring once (an override
    without a docstring shows its base's)."""
    found, seen = [], set()
    for name in NAMES:
        if examples_of(name) and id(name.source) not in seen:
            seen.add(id(name.source))
            found.append(name)
    return found


def where(name: PublicName) -> tuple[str | None, int]:
    """The file and line of `name`'s docstring's owner, for doctest's report."""
    source: Any = name.source.fget if isinstance(name.source, property) else name.source
    try:
        return inspect.getsourcefile(inspect.unwrap(source)), inspect.getsourcelines(source)[1]
    except (OSError, TypeError):
        return None, 0


def test_the_walk_finds_the_whole_api() -> None:
    """What the checks below go over: the classes and functions of the reference, and their
    methods and properties, each once."""
    names = [n.name for n in NAMES]
    assert len(names) == len(set(names))
    for expected in (
        "bayeux.BayeuxServer.publish",
        "bayeux.Endpoint.publish",
        "bayeux.client.Client.subscribe",
        "bayeux.client.BayeuxError.code",  # once, not again under each subclass
        "bayeux.testing.ServerThread.url",
        "bayeux.Settings.timeout_seconds",  # a property
        "bayeux.current_request",  # a function
    ):
        assert expected in names, expected
    assert "bayeux.client.ClientClosed.code" not in names
    assert len(names) > 250


def test_every_public_name_has_an_example() -> None:
    missing = [n for n in NAMES if not examples_of(n)]
    by_module: dict[str, list[str]] = {}
    for name in missing:
        by_module.setdefault(name.module, []).append(name.name)
    report = "\n".join(
        f"{module} ({len(listed)}): {', '.join(listed)}" for module, listed in by_module.items()
    )
    if missing:
        pytest.fail(f"{len(missing)} public names have no '>>>' example:\n{report}", pytrace=False)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    redis = RedisServer()
    redis.start()
    try:
        yield redis.url
    finally:
        redis.stop()


@pytest.fixture(scope="module")
def hook_request() -> bayeux.RequestContext:
    """What `current_request()` gives a handshake policy when this client handshakes:
    `SyncClient(url + "?room=lobby", transports=["long-polling"], headers={"X-App": "demo"},
    cookies={"app_login": "alice"})` (RequestContext's docstring says so)."""
    seen: list[bayeux.RequestContext | None] = []

    class Keep(bayeux.SecurityPolicy):
        def can_handshake(self, session: Any, message: Any) -> bool:
            seen.append(bayeux.current_request())
            return True

    endpoint = bayeux.Endpoint(server=bayeux.BayeuxServer(policy=Keep()))
    with ServerThread(endpoint=endpoint) as running:
        options: dict[str, Any] = {"headers": {"X-App": "demo"}, "cookies": {"app_login": "alice"}}
        with SyncClient(running.url + "?room=lobby", transports=["long-polling"], **options):
            pass
    (context,) = seen
    assert context is not None
    return context


def example_globals(name: PublicName) -> dict[str, Any]:
    """What an example may use without importing it: what the module defining its object
    has (doctest's own rule), the package's public names (`from bayeux import *`) and
    `bayeux`, and `server`, a new BayeuxServer."""
    globs = dict(vars(importlib.import_module(name.module)))
    globs.update({public: getattr(bayeux, public) for public in bayeux.__all__})
    globs["bayeux"] = bayeux
    globs["server"] = bayeux.BayeuxServer(bayeux.Settings())
    globs["__name__"] = name.module
    return globs


def example_cases() -> list[Any]:
    cases = []
    for name in with_examples():
        needs_redis = "redis_url" in (name.doc or "")
        marks = [pytest.mark.redis] if needs_redis else []
        cases.append(pytest.param(name, id=name.name, marks=marks))
    return cases


@pytest.mark.parametrize("name", example_cases())
def test_the_example_runs_as_shown(
    name: PublicName, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    globs = example_globals(name)
    globs["request"] = request.getfixturevalue("hook_request")
    if "redis_url" in (name.doc or ""):
        globs["redis_url"] = request.getfixturevalue("redis_url")
    filename, line = where(name)
    assert name.doc is not None
    test = PARSER.get_doctest(name.doc, globs, name.name, filename, line)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    report: list[str] = []
    threads = set(threading.enumerate())
    children = set(child_pids(os.getpid()))
    with caplog.at_level(logging.ERROR):
        result = runner.run(test, out=report.append)
    assert result.attempted > 0
    assert result.failed == 0, "".join(report)
    # A listener that raises is only logged: an example must not fail that quietly either.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, f"the example of {name.name} logged errors: {errors}"
    left = [t for t in set(threading.enumerate()) - threads if t.is_alive()]
    assert not left, f"the example of {name.name} left threads running: {left}"
    processes = set(child_pids(os.getpid())) - children
    assert not processes, f"the example of {name.name} left processes running: {processes}"


# ------------------------------------------------------------------------------ signatures

SECTION = re.compile(r"^(\s*)(Args|Arguments|Parameters):\s*$")
ITEM = re.compile(r"^(\**\w+)(?:\s*\([^)]*\))?:")


def documented_parameters(doc: str) -> list[str] | None:
    """The names of a Google-style `Args:` section, None when the docstring has none."""
    lines = doc.splitlines()
    for index, line in enumerate(lines):
        header = SECTION.match(line)
        if header is None:
            continue
        indent, item_indent, names = len(header.group(1)), None, []
        for following in lines[index + 1 :]:
            if not following.strip():
                continue
            depth = len(following) - len(following.lstrip())
            if depth <= indent:
                break  # the next section
            if item_indent is None:
                item_indent = depth
            if depth == item_indent:
                item = ITEM.match(following.strip())
                assert item, f"not an `name: text` line of Args: {following.strip()!r}"
                names.append(item.group(1).lstrip("*"))
        return names
    return None


def args_drift(code: Any, doc: str) -> str | None:
    """What differs between the `Args:` of `doc` and the parameters of `code` (a class: its
    constructor's), None when they agree or the docstring has no such section."""
    documented = documented_parameters(doc)
    if documented is None:
        return None
    actual = [p for p in inspect.signature(code).parameters if p not in ("self", "cls")]
    if sorted(documented) == sorted(actual):
        return None
    return f"documents {documented}, takes {actual}"


def test_the_args_sections_name_the_parameters_the_code_has() -> None:
    checked = [name for name in NAMES if documented_parameters(name.doc or "") is not None]
    assert len(checked) >= 5  # Client and its subscribe, messages, publish, remote_call
    wrong = [f"{n.name}: {args_drift(n.code, n.doc or '')}" for n in checked]
    wrong = [line for line in wrong if not line.endswith(": None")]
    assert not wrong, "\n".join(wrong)


def test_an_args_section_that_drifted_is_caught() -> None:
    """The check above sees a renamed or a forgotten parameter."""
    doc = "Does it.\n\nArgs:\n    channel: where.\n    data (Any): what,\n        on two lines.\n"
    assert documented_parameters(doc) == ["channel", "data"]
    assert documented_parameters("No section.\n\nReturns:\n    x: y.") is None

    def publish(self: object, channel: str, data: Any) -> None: ...
    def renamed(self: object, channel: str, payload: Any) -> None: ...
    def more(self: object, channel: str, data: Any, *, ext: Any = None) -> None: ...

    assert args_drift(publish, doc) is None
    assert args_drift(renamed, doc) == "documents ['channel', 'data'], takes ['channel', 'payload']"
    assert args_drift(more, doc) is not None


# --------------------------------------------------------------------- client callbacks

CALLED_AS = re.compile(r"`callback\(([^)]*)\)`")


def documented_call(method: Callable[..., Any]) -> list[str]:
    doc = inspect.getdoc(method) or ""
    found = CALLED_AS.search(doc)
    assert found, f"{method.__qualname__}'s docstring does not say how the callback is called"
    return [argument.strip() for argument in found.group(1).split(",") if argument.strip()]


def recorder(
    arguments: list[str], calls: list[tuple[Any, ...]], called: threading.Event
) -> Callable[..., None]:
    """A callback taking exactly `arguments` (positional, no defaults) recording its calls."""
    namespace: dict[str, Any] = {"calls": calls, "called": called}
    parameters = ", ".join(arguments)
    exec(
        f"def callback({parameters}):\n    calls.append(({parameters},))\n    called.set()",
        namespace,
    )
    return namespace["callback"]


@pytest.mark.parametrize("client_class", ["Client", "SyncClient"])
def test_client_callbacks_are_called_as_documented(
    client_class: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback written to `subscribe`'s and `on_state`'s docstrings (`callback(message)`,
    `callback(old, new)`) gets those arguments: SyncClient runs Client's, so both docstrings
    must agree with how Client calls them."""
    documented = getattr(bayeux.client, client_class)
    message_arguments = documented_call(documented.subscribe)
    state_arguments = documented_call(documented.on_state)
    messages: list[tuple[Any, ...]] = []
    states: list[tuple[Any, ...]] = []
    received, moved = threading.Event(), threading.Event()
    with caplog.at_level(logging.ERROR), ServerThread() as running:
        client = SyncClient(running.url)
        client.on_state(recorder(state_arguments, states, moved))
        with client:
            client.subscribe("/chat/room", recorder(message_arguments, messages, received))
            client.publish("/chat/room", "hello")
            assert received.wait(5)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, errors
    assert len(message_arguments) == 1
    assert [call[0]["data"] for call in messages] == ["hello"]
    assert len(state_arguments) == 2 and moved.is_set()
    assert all(len(call) == 2 for call in states)


# ------------------------------------------------------------------------- docs imports

IMPORT = re.compile(r"\bfrom\s+(bayeux(?:\.\w+)*)\s+import\s+(\([^)]*\)|[\w ,]+)")
PLAIN_IMPORT = re.compile(r"^\s*import\s+(bayeux(?:\.\w+)*)", re.M)


def documentation() -> list[Path]:
    return sorted([*ROOT.glob("*.md"), *(ROOT / "docs").rglob("*.md")])


def imports_in(text: str) -> Iterator[tuple[str, str | None]]:
    """(module, name) for each name a `from bayeux... import` brings; (module, None) for a
    plain `import bayeux...`."""
    for found in IMPORT.finditer(text):
        names = re.sub(r"#[^\n]*", "", found.group(2)).strip("()")
        for part in names.split(","):
            words = part.split()
            if words:
                yield found.group(1), words[0]
    for found in PLAIN_IMPORT.finditer(text):
        yield found.group(1), None


def test_every_import_the_documentation_shows_works() -> None:
    failed, checked = [], 0
    for page in documentation():
        for module_name, attribute in imports_in(page.read_text()):
            checked += 1
            shown = f"{page.relative_to(ROOT)}: from {module_name} import {attribute}"
            try:
                module = importlib.import_module(module_name)
            except ImportError as error:
                failed.append(f"{shown}: {error}")
                continue
            if attribute is None or hasattr(module, attribute):
                continue
            try:  # a submodule: from bayeux import testing
                importlib.import_module(f"{module_name}.{attribute}")
            except ImportError:
                failed.append(f"{shown}: no such name")
    assert checked >= 10
    assert not failed, "\n".join(failed)


def test_the_import_check_sees_a_wrong_one() -> None:
    text = "```python\nfrom bayeux.client import (\n    Client,  # the client\n    SyncClient,\n)\n"
    text += "from bayeux import Endpoint as E\n```\nand `from bayeux import Settings`."
    assert list(imports_in(text)) == [
        ("bayeux.client", "Client"),
        ("bayeux.client", "SyncClient"),
        ("bayeux", "Endpoint"),
        ("bayeux", "Settings"),
    ]
