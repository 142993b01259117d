"""What a session's record in Redis holds, read and written: its position in the log, its ack
batches, whether it had its first connect, and what is queued for it outside the log."""

from __future__ import annotations

from typing import NamedTuple

import orjson

from ...core.attributes import Changes
from ...core.engine import SessionRecord
from ...core.message import Delivery
from ...core.session import ServerSession

# A session's attribute `name` is the field "a:<name>" of its record.
ATTRIBUTE = "a:"
ATTRIBUTE_BYTES = ATTRIBUTE.encode()


class State(NamedTuple):
    """What a session's record keeps of it, in the order the Lua scripts take it."""

    position: int  # in the log: every entry up to it reached the session
    batch: int  # the ack extension's last batch number (0 without ack)
    batches: str  # the unacknowledged batches' positions, a JSON object
    connected: int  # 1 once it had its first connect


class Saved(NamedTuple):
    """What the periodic save keeps of a session: its State, and whether its position
    follows the process's floor (see `saved_state`)."""

    position: int
    batch: int
    batches: str
    connected: int
    follows_floor: int


def saved(state: State, follows_floor: int = 0) -> Saved:
    return Saved(*state, follows_floor)


def state_of(session: ServerSession, floor: int = 0) -> State:
    """What a session's record keeps of it, exactly: position, last batch, unacknowledged
    batches, and whether it had its first connect (answered at once, wherever the next one
    goes). `floor`: the process's read position, which a session that keeps up takes as its
    own (see `keeps_up`)."""
    ack = session.ack
    connected = int(session.connected)
    if ack is None:
        position = session.written
        if floor > position and keeps_up(session):
            position = floor
        return State(position, 0, "{}", connected)
    batches = {str(n): p for n, p in ack.batch_positions().items()}
    return State(ack.position, ack.batch, orjson.dumps(batches).decode(), connected)


def keeps_up(session: ServerSession) -> bool:
    """Whether a session without ack has been handed every log entry up to the process's read
    position that concerned it: nothing queued, nothing waiting behind an asynchronous
    outgoing extension. Its position is then the floor, whatever its last message: a session
    handed over or drained with the position of its last message made its next owner read
    the log again from there (every entry since, whoever it was for: 40 KB a handoff in
    benchmarks/redis_costs.py, up to the whole log for a session on a quiet channel)."""
    order = session.outgoing_order
    return not session.queue and (order is None or not len(order))


def saved_state(session: ServerSession, floor: int = 0) -> Saved:
    """What the periodic save writes. A session without ack whose queue is empty has been
    handed every log entry up to the process's read position that concerned it, so its record
    need not change while that stays true: it follows the floor the process saves for all of
    them at once (one write a save, not one per session whose position moved). Position 0
    then, the floor being written in its place.

    So does one whose queue begins with a log entry read after `floor`, the floor saved last
    (a broadcast still being written to its subscribers): it has every entry before that one,
    and the save holds the floor it writes below it (`held_floor`). Saved with its own
    position instead, and following again at the next save, each such session cost two
    record writes per broadcast (17,800 for one broadcast to 24,000 WebSockets over 6
    processes: benchmarks/scale.py)."""
    if session.ack is None:
        queue = session.queue
        if not queue or queue[0].position > floor:
            return Saved(0, 0, "{}", int(session.connected), 1)
    return saved(state_of(session))


def held_floor(session: ServerSession, floor: int) -> int:
    """The highest floor a session that follows it lets the process save: below the first
    log entry waiting in its queue (`saved_state`), or `floor` itself."""
    queue = session.queue
    if session.ack is None and queue and queue[0].position:
        return min(floor, queue[0].position - 1)
    return floor


def state_of_record(record: SessionRecord) -> State:
    """The same, as a record read from Redis has it."""
    batches = {str(n): p for n, p in record.batches.items()}
    return State(
        record.position, record.batch, orjson.dumps(batches).decode(), int(record.connected)
    )


def pending_of(session: ServerSession) -> bytes:
    """What is queued for a session and not in the log (replayed events, service replies), as
    a JSON array: the log has the rest."""
    return b"[" + b",".join(d.json for d in session.queue if not d.position) + b"]"


def timing_field(session: ServerSession) -> str:
    """A session's own settings as the record keeps them: "t,i,m,e" for its timeout,
    interval and maxInterval (each empty for the server's setting) and its
    broadcast-to-publisher ("1", "0", or empty for the server's)."""
    values = (session.timeout, session.interval, session.max_interval)
    echo = session.broadcast_to_publisher
    return ",".join(
        [
            *("" if value is None else str(value) for value in values),
            "" if echo is None else str(int(echo)),
        ]
    )


def timing_of(field: bytes) -> tuple[int | None, int | None, int | None]:
    parts = field.decode("ascii", "replace").split(",")
    if len(parts) not in (3, 4):
        return None, None, None
    values = [int(p) if p.isdigit() else None for p in parts[:3]]
    return values[0], values[1], values[2]


def echo_of(field: bytes) -> bool | None:
    """The broadcast-to-publisher of a timing field (None: the server's, or an older record)."""
    parts = field.split(b",")
    if len(parts) != 4 or parts[3] not in (b"0", b"1"):
        return None
    return parts[3] == b"1"


def attributes_message(client_id: str, changes: Changes) -> str:
    """The control message telling the process serving a session of attribute changes made
    elsewhere: `attrs <clientId> <JSON object of name: JSON text, or null when removed>`."""
    texts = {name: None if value is None else value.decode() for name, value in changes.items()}
    return f"attrs {client_id} {orjson.dumps(texts).decode()}"


def changes_of(text: str) -> Changes:
    """The changes of an `attrs` control message (see attributes_message); {} if malformed."""
    try:
        texts = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {}
    if not isinstance(texts, dict):
        return {}
    return {
        str(name): None if value is None else str(value).encode()
        for name, value in texts.items()
        if value is None or isinstance(value, str)
    }


def record_of(client_id: str, flat: list[bytes]) -> SessionRecord:
    split = flat.index(b"|")
    fields = dict(zip(flat[0:split:2], flat[1:split:2], strict=True))
    batches = orjson.loads(fields.get(b"batches", b"{}"))
    return SessionRecord(
        client_id,
        subscriptions=[s.decode() for s in flat[split + 1 :]],
        position=int(fields.get(b"pos", b"0")),
        ack=fields.get(b"ack") == b"1",
        connected=fields.get(b"connected") == b"1",
        batch=int(fields.get(b"batch", b"0")),
        batches={int(k): int(v) for k, v in batches.items()},
        pending=[Delivery(m) for m in orjson.loads(fields.get(b"pending", b"[]"))],
        address=fields.get(b"addr", b"").decode("utf-8", "replace"),
        timing=timing_of(fields.get(b"timing", b"")),
        echo=echo_of(fields.get(b"timing", b"")),
        browser=fields.get(b"browser", b"").decode("ascii", "replace"),
        user=fields.get(b"user", b"").decode("utf-8", "replace"),
        attributes={
            name[len(ATTRIBUTE) :].decode("utf-8", "replace"): value
            for name, value in fields.items()
            if name.startswith(ATTRIBUTE_BYTES)
        },
    )
