"""The admin page's JSON API on the standalone listener: nothing without the token (401, or 403
from the application's own check), every odd or hostile parameter and body refused with a 4xx
and never a 500, pages bounded and complete, its figures those of the server, its actions
ending a session and publishing; the counting extension there only while someone watches."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayeux.admin
from bayeux import Endpoint, Settings
from bayeux.admin import counting
from bayeux.admin.counting import Counting
from tests.helpers.admin import TOKEN, AdminServer, Swarm, api, until
from tests.helpers.http import request
from tests.helpers.servers import ROOT

API_GETS = ("overview", "sessions", "channels", "users")
API_POSTS = ("disconnect", "publish")
UNKNOWN_ID = "0" * 40


def served() -> AdminServer:
    endpoint = Endpoint(Settings(max_handshakes_per_address=-1))
    endpoint.admin(TOKEN)
    return AdminServer(endpoint)


@pytest.fixture
def admin():
    with served() as server:
        yield server


# ----------------------------------------------------------------------------- the page


def test_the_page_and_its_assets_come_without_the_token_and_hold_no_figure(admin) -> None:
    page = request(admin.admin, method="GET")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html;charset=utf-8"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "connect-src 'self'" in policy
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    html = page.body.decode()
    # Every figure is an empty element until the API answers the page.
    figures = re.findall(r'data-metric="[^"]+">([^<]*)<', html)
    assert figures and all(text == "" for text in figures)
    assert 'href="/admin/admin.css"' in html and 'src="/admin/admin.js"' in html
    assert "http://" not in html and "https://" not in html  # nothing from elsewhere
    assert request(admin.admin + "/", method="GET").body == page.body
    script = request(admin.admin + "/admin.js", method="GET")
    assert script.status == 200 and script.headers["Content-Type"].startswith("text/javascript")
    style = request(admin.admin + "/admin.css", method="GET")
    assert style.status == 200 and style.headers["Content-Type"].startswith("text/css")
    head = request(admin.admin + "/admin.js", method="HEAD")
    assert head.status == 200 and head.body == b""
    assert request(admin.admin + "/admin.js", method="POST", body=b"x").status == 405
    assert request(admin.admin + "/secrets", method="GET").status == 404
    assert request(admin.admin + "/api/nothing", method="GET").status == 404


def test_every_figure_the_page_names_is_documented() -> None:
    static = Path(bayeux.admin.__file__).parent / "static"
    named = set(re.findall(r'data-metric="([a-z-]+)"', (static / "index.html").read_text()))
    script = (static / "admin.js").read_text()
    named |= set(re.findall(r'(?:setFigure|figureCell)\("([a-z-]+)"', script))
    named |= {
        f"{series}-rate"
        for series in re.findall(r'"(handshakes|connects|publishes|deliveries)"', script)
    }
    page = (ROOT / "docs" / "admin.md").read_text()
    documented = set(re.findall(r"`([a-z]+(?:-[a-z]+)*)`", page))
    assert len(named) > 20
    assert not named - documented, sorted(named - documented)


def test_the_pages_files_are_package_data() -> None:
    import fnmatch
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["bayeux.admin"]
    static = Path(bayeux.admin.__file__).parent
    files = [str(p.relative_to(static)) for p in (static / "static").iterdir()]
    assert sorted(files) == ["static/admin.css", "static/admin.js", "static/index.html"]
    assert all(any(fnmatch.fnmatch(f, pattern) for pattern in patterns) for f in files)


# ------------------------------------------------------------------------- authentication


@pytest.mark.parametrize("name", API_GETS + API_POSTS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
        {"Cookie": f"token={TOKEN}"},
        {"X-Bayeux-Admin": "1"},
    ],
    ids=["none", "empty-bearer", "basic", "bare", "cookie", "page-header-alone"],
)
def test_no_token_no_answer(admin, name: str, headers: dict[str, str]) -> None:
    body = {"clientId": UNKNOWN_ID} if name in API_POSTS else None
    answer = api(admin.admin, name, token=None, headers=headers, body=body)
    assert answer.status == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="bayeux-admin"'
    assert answer.json() == {"error": "token needed"}


@pytest.mark.parametrize("name", API_GETS + API_POSTS)
@pytest.mark.parametrize(
    "wrong", [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "x" * 10_000, TOKEN[::-1]]
)
def test_a_wrong_token_gets_401_invalid_token(admin, name: str, wrong: str) -> None:
    body = {"clientId": UNKNOWN_ID} if name in API_POSTS else None
    answer = api(admin.admin, name, token=wrong, body=body)
    assert answer.status == 401
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]


@pytest.mark.parametrize("parameter", ["token", "access_token", "admin_token"])
def test_a_token_in_the_query_string_is_never_read(admin, parameter: str) -> None:
    answer = api(admin.admin, "overview", f"{parameter}={TOKEN}", token=None)
    assert answer.status == 401  # not even a 400 for the unknown parameter: nothing is said


def test_the_token_is_never_logged(admin, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    for name in API_GETS:
        assert api(admin.admin, name).status == 200
    assert api(admin.admin, "publish", body={"channel": "/a", "data": 1}).status == 200
    assert api(admin.admin, "overview", token=TOKEN + "x").status == 401
    assert caplog.records, "nothing was logged: the test would prove nothing"
    assert TOKEN not in caplog.text


# ----------------------------------------------------------------- hostile parameters


BAD_QUERIES = {
    "sessions": [
        "limit=0",
        "limit=-1",
        "limit=101",
        "limit=" + "9" * 100,
        "limit=abc",
        "limit=1.5",
        "limit=%EF%BC%91%EF%BC%90",  # fullwidth digits: isdigit() says yes
        "limit=",
        "limit=1&limit=2",
        "sort=bogus",
        "sort=",
        "q=" + "a" * 101,
        "q=%00",
        "q=a%0Ab",
        "after=zzz",
        "after=1:zzz",
        "after=-1:" + UNKNOWN_ID,
        "after=1:" + "0" * 41,
        "sort=id&after=1:" + UNKNOWN_ID,
        "nothing=1",
        "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9",
        "q=" + "x" * 2000,
        "%ff=1",
        "limit=%ff",
    ],
    "channels": ["limit=1000", "sort=queue", "after=x", "q=%07", "limit=0x10"],
    "users": ["limit=101", "limit=0", "q=a"],
    "overview": ["limit=1", "x="],
}


@pytest.mark.parametrize(
    ("name", "query"), [(name, query) for name, queries in BAD_QUERIES.items() for query in queries]
)
def test_odd_parameters_are_refused_with_400(admin, name: str, query: str) -> None:
    answer = api(admin.admin, name, query)
    assert answer.status == 400, answer.body
    assert "error" in answer.json()


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(API_GETS),
    query=st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"),
        max_size=300,
    ),
)
def test_any_query_string_gets_200_or_400(name: str, query: str) -> None:
    answer = api(_shared.admin, name, query)
    assert answer.status in (200, 400), (query, answer.status, answer.body)


BAD_BODIES = [
    ("disconnect", b"", 400),
    ("disconnect", b"not json", 400),
    ("disconnect", b"[]", 400),
    ("disconnect", b'"' + UNKNOWN_ID.encode() + b'"', 400),
    ("disconnect", b"{}", 400),
    ("disconnect", b'{"clientId": 1}', 400),
    ("disconnect", b'{"clientId": null}', 400),
    ("disconnect", b'{"clientId": "ABC"}', 400),
    ("disconnect", b'{"clientId": "' + b"g" * 40 + b'"}', 400),
    ("disconnect", b'{"clientId": "' + UNKNOWN_ID.encode() + b'", "x": 1}', 400),
    ("disconnect", b'{"clientId": "' + UNKNOWN_ID.encode() + b'"}', 404),
    ("disconnect", b'{"clientId": NaN}', 400),
    ("disconnect", b"\xff\xfe", 400),
    ("disconnect", b"[" * 100_000, 413),
    ("publish", b'{"channel": "/meta/handshake", "data": 1}', 400),
    ("publish", b'{"channel": "/service/echo", "data": 1}', 400),
    ("publish", b'{"channel": "/chat/*", "data": 1}', 400),
    ("publish", b'{"channel": "/chat/**", "data": 1}', 400),
    ("publish", b'{"channel": "chat", "data": 1}', 400),
    ("publish", b'{"channel": "/chat//x", "data": 1}', 400),
    ("publish", b'{"channel": 5, "data": 1}', 400),
    ("publish", b'{"channel": "/chat"}', 400),
    ("publish", b'{"channel": "/chat", "data": ' + b"[" * 100 + b"]" * 100 + b"}", 400),
    ("publish", b'{"channel": "/chat", "data": 1e999}', 400),
    ("publish", b'{"channel": "/' + b"a" * 20_000 + b'", "data": 1}', 413),
]


@pytest.mark.parametrize(("name", "body", "status"), BAD_BODIES)
def test_odd_bodies_are_refused(admin, name: str, body: bytes, status: int) -> None:
    answer = api(admin.admin, name, body=body)
    assert answer.status == status, answer.body
    assert "error" in answer.json()


def test_methods_and_content_types(admin) -> None:
    body = {"clientId": UNKNOWN_ID}
    assert api(admin.admin, "disconnect", method="GET").status == 405
    assert api(admin.admin, "overview", body=body).status == 405
    assert api(admin.admin, "overview", method="DELETE").status == 405
    assert api(admin.admin, "disconnect", body=body, method="PUT").status == 405
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        sent = {"Content-Type": content_type}
        assert api(admin.admin, "disconnect", body=body, headers=sent).status == 415
    assert api(admin.admin, "disconnect", "clientId=" + UNKNOWN_ID, body=body).status == 400
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert api(admin.admin, "disconnect", body=body, headers=charset).status == 404
    # A preflight gets no CORS permission: another site's page cannot call the API.
    preflight = api(
        admin.admin,
        "disconnect",
        method="OPTIONS",
        token=None,
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 401
    assert "Access-Control-Allow-Origin" not in preflight.headers


# --------------------------------------------------------------------------- figures


def test_the_overview_counts_sessions_by_transport_and_the_rates_follow(admin) -> None:
    with Swarm(admin.url, 12, subscribed=5, rate=20.0):
        answer = until(lambda: _overview_when(admin, lambda o: o["sessions"] == 13))
        assert answer["transports"] == {"websocket": 13}
        assert answer["engine"] == "memory"
        assert answer["deployment"] == {"asked": 1, "answered": 1, "reached": True}
        (process,) = answer["processes"]
        assert process["sessions"] == 13 and process["pid"] > 0
        # Rates come from the second sample on: publishes near 20/s, deliveries five times.
        rates = until(lambda: _overview_when(admin, _rates_settled(20.0, 100.0)))["rates"]
        assert 12 <= rates["publishes"] <= 28 and 60 <= rates["deliveries"] <= 140
        channels = api(admin.admin, "channels").json()["channels"]
        assert channels[0]["channel"] == "/load/ticks" and channels[0]["subscribers"] == 5
        assert 12 <= channels[0]["rate"] <= 28


def _overview_when(admin: AdminServer, test) -> dict | None:
    answer = api(admin.admin, "overview").json()
    return answer if test(answer) else None


def _rates_settled(publishes: float, deliveries: float):
    def settled(answer: dict) -> bool:
        rates = answer["rates"]
        return (
            bool(rates)
            and rates["publishes"] > publishes / 2
            and (rates["deliveries"] > deliveries / 2)
        )

    return settled


def test_handshakes_and_connects_are_counted_while_watched(admin) -> None:
    api(admin.admin, "overview")  # watched from now on
    with Swarm(admin.url, 20):
        rates = until(
            lambda: _overview_when(admin, lambda o: (o["rates"] or {}).get("handshakes", 0) > 0)
        )["rates"]
        assert rates["connects"] > 0


def test_counting_stops_when_nobody_watches(admin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(counting, "WATCH_SECONDS", 1.5)
    server = admin.endpoint.server
    counted = lambda: [e for e in server.extensions if isinstance(e, Counting)]  # noqa: E731
    assert admin.call(counted) == [] and admin.call(lambda: server.hooks.waits) is False
    assert api(admin.admin, "overview").status == 200
    assert len(admin.call(counted)) == 1 and admin.call(lambda: server.hooks.waits) is True
    # Nobody asks any more: the extension goes, and batches are no longer charged.
    until(lambda: admin.call(counted) == [], within=10)
    assert admin.call(lambda: server.hooks.waits) is False
    assert api(admin.admin, "sessions").status == 200
    assert len(admin.call(counted)) == 1


def test_sessions_page_through_every_session_once(admin) -> None:
    server = admin.endpoint.server
    made = [admin.call(server.create_session) for _ in range(230)]
    for depth, session in enumerate(made[:30]):
        for _ in range(depth):
            admin.call(session.deliver, "/inbox", {"n": depth})
    for sort in ("queue", "id"):
        seen: list[dict] = []
        after = ""
        while True:
            answer = api(admin.admin, "sessions", f"sort={sort}&limit=100&after={after}").json()
            assert len(answer["sessions"]) <= 100
            assert answer["matched"] == 230
            seen.extend(answer["sessions"])
            if answer["next"] is None:
                break
            after = answer["next"]
        assert sorted(row["clientId"] for row in seen) == sorted(s.id for s in made)
        if sort == "queue":
            depths = [row["queue"] for row in seen]
            assert depths == sorted(depths, reverse=True) and depths[0] == 29
            assert seen[0]["bytes"] > 0
        else:
            assert [row["clientId"] for row in seen] == sorted(s.id for s in made)
    one = api(admin.admin, "sessions", f"q={made[7].id[:12]}").json()
    assert [row["clientId"] for row in one["sessions"]] == [made[7].id]
    assert one["matched"] == 1 and one["next"] is None


def test_channels_search_and_sort(admin) -> None:
    server = admin.endpoint.server
    for index in range(40):
        session = admin.call(server.create_session)
        for channel in [f"/room/{n}" for n in range(index % 7)]:
            admin.call(server.subscribe, session, channel)
    answer = api(admin.admin, "channels", "limit=3").json()
    assert [row["channel"] for row in answer["channels"]] == ["/room/0", "/room/1", "/room/2"]
    assert [row["subscribers"] for row in answer["channels"]] == [34, 28, 22]
    assert answer["patterns"] == 6
    found = api(admin.admin, "channels", "q=ROOM/5").json()["channels"]
    assert found == [{"channel": "/room/5", "subscribers": 5, "rate": 0.0}]


def test_users_online(admin) -> None:
    server = admin.endpoint.server
    for user in ("alice", "bob", "<script>"):
        session = admin.call(server.create_session)
        admin.call(server.users.add, user, session)
    answer = api(admin.admin, "users", "limit=2").json()
    assert answer["count"] == 3 and len(answer["users"]) == 2
    assert api(admin.admin, "overview").json()["users"] == 3


# ---------------------------------------------------------------------------- actions


def test_disconnect_ends_the_session_and_tells_its_client_to_stop(admin) -> None:
    with Swarm(admin.url, 3) as swarm:
        victim, other, _ = swarm.client_ids
        answer = api(admin.admin, "disconnect", body={"clientId": victim})
        assert answer.status == 200
        assert answer.json()["disconnected"] is True
        until(lambda: swarm.stopped(victim))
        assert not swarm.stopped(other)
        assert victim not in admin.endpoint.server.sessions
        again = api(admin.admin, "disconnect", body={"clientId": victim})
        assert again.status == 404


def test_the_servers_own_sessions_are_not_the_pages_to_end(admin) -> None:
    server = admin.endpoint.server
    session = admin.call(server.create_session)
    admin.call(setattr, session, "local", True)  # as a decorator's subscription has it
    (row,) = api(admin.admin, "sessions", f"q={session.id}").json()["sessions"]
    assert row["local"] is True
    answer = api(admin.admin, "disconnect", body={"clientId": session.id})
    assert answer.status == 400
    assert session.id in server.sessions


def test_publish_reaches_the_subscribers(admin) -> None:
    with Swarm(admin.url, 2, extra=("/admin/test",)) as swarm:
        answer = api(admin.admin, "publish", body={"channel": "/admin/test", "data": {"a": 1}})
        assert answer.status == 200 and answer.json() == {"published": True, "reached": 1}
        until(lambda: swarm.received["/admin/test"] == 1)


# ------------------------------------------------------------ the application's own check


def _endpoint_with(authorize) -> AdminServer:
    endpoint = Endpoint()
    endpoint.admin(authorize=authorize)
    return AdminServer(endpoint)


def _logged_in(request) -> bool:
    return request.cookie("app_login") == "alice"


async def _logged_in_later(request) -> bool:
    return request.cookie("app_login") == "alice"


def _broken(request) -> bool:
    raise RuntimeError("the session store is down")


@pytest.mark.parametrize("authorize", [_logged_in, _logged_in_later], ids=["plain", "async"])
def test_the_applications_check_with_the_page_header(authorize) -> None:
    with _endpoint_with(authorize) as admin:
        page = {"X-Bayeux-Admin": "1"}
        alice = {"Cookie": "app_login=alice"}
        assert api(admin.admin, "overview", token=None, headers={**page, **alice}).status == 200
        # Another site's form sends the cookie, never the page's header.
        assert api(admin.admin, "overview", token=None, headers=alice).status == 401
        forged = api(
            admin.admin, "disconnect", token=None, headers=alice, body={"clientId": UNKNOWN_ID}
        )
        assert forged.status == 401
        bob = {**page, "Cookie": "app_login=bob"}
        assert api(admin.admin, "overview", token=None, headers=bob).status == 403
        # No token was set: none is accepted.
        assert api(admin.admin, "overview", headers={**page, **alice}).status == 401


def test_a_failing_check_lets_nobody_in(caplog: pytest.LogCaptureFixture) -> None:
    with _endpoint_with(_broken) as admin:
        answer = api(admin.admin, "overview", token=None, headers={"X-Bayeux-Admin": "1"})
        assert answer.status == 403
    assert "the authorize function failed" in caplog.text


@pytest.mark.parametrize(
    ("token", "authorize"),
    [
        (None, None),
        ("short", None),
        ("x" * 257, None),
        ("has a space in it!!", None),
        ("tab\tin-the-token-here", None),
        ("é" * 20, None),
    ],
)
def test_a_page_needs_a_good_token_or_a_check(token, authorize) -> None:
    with pytest.raises(ValueError):
        Endpoint().admin(token, authorize=authorize)


@pytest.mark.parametrize(
    "path",
    ["/cometd", "/cometd/admin", "admin", "/", "/ad min", '/a"b', "/a<b", "/a//b", "/a/..", "/."],
)
def test_the_admin_path_must_be_its_own(path: str) -> None:
    endpoint = Endpoint()
    endpoint.admin(TOKEN)
    with pytest.raises(ValueError):
        endpoint.listener("/cometd", admin_path=path)


# One server for the hypothesis test (a fixture per example would start one each time).
class _Shared:
    server: AdminServer | None = None

    @property
    def admin(self) -> str:
        if self.server is None:
            self.server = served().__enter__()
        return self.server.admin


_shared = _Shared()


@pytest.fixture(scope="module", autouse=True)
def _stop_shared():
    yield
    if _shared.server is not None:
        _shared.server.__exit__(None, None, None)
