"""What a session's record in Redis holds, read and written: its position in the log, its ack
batches, whether it had its first connect, and what is queued for it outside the log."""

from __future__ import annotations

import orjson

from ...core.engine import SessionRecord
from ...core.message import Delivery
from ...core.session import ServerSession

State = tuple[int, int, str, int]
# What the periodic save keeps of a session: its State and whether its position follows the
# process's floor (see `saved_state`).
Saved = tuple[int, int, str, int, int]


def state_of(session: ServerSession) -> State:
    """What a session's record keeps of it, exactly: position, last batch, unacknowledged
    batches, and whether it had its first connect (answered at once, wherever the next one
    goes)."""
    ack = session.ack
    connected = int(session.connected)
    if ack is None:
        return session.written, 0, "{}", connected
    batches = {str(n): p for n, p in ack.batch_positions().items()}
    return ack.position, ack.batch, orjson.dumps(batches).decode(), connected


def saved_state(session: ServerSession) -> Saved:
    """What the periodic save writes. A session without ack whose queue is empty has been
    handed every log entry up to the process's read position that concerned it, so its record
    need not change while that stays true: it follows the floor the process saves for all of
    them at once (one write a save, not one per session whose position moved). Position 0
    then, the floor being written in its place."""
    if session.ack is None and not session.queue:
        return 0, 0, "{}", int(session.connected), 1
    return (*state_of(session), 0)


def state_of_record(record: SessionRecord) -> State:
    """The same, as a record read from Redis has it."""
    batches = {str(n): p for n, p in record.batches.items()}
    return record.position, record.batch, orjson.dumps(batches).decode(), int(record.connected)


def pending_of(session: ServerSession) -> bytes:
    """What is queued for a session and not in the log (replayed events, service replies), as
    a JSON array: the log has the rest."""
    return b"[" + b",".join(d.json for d in session.queue if not d.position) + b"]"


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
    )
