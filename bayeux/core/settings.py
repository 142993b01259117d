"""Server settings, named after CometD's and with CometD's defaults where CometD has one.

Every field carries its help text; the command line is generated from this class, so `--help`
documents each setting exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

LONG_POLLING = "long-polling"
CALLBACK_POLLING = "callback-polling"
WEBSOCKET = "websocket"
# Faye's names: long-polling with CORS, and a Server-Sent Events stream for deliveries.
CROSS_ORIGIN_LONG_POLLING = "cross-origin-long-polling"
EVENTSOURCE = "eventsource"
QUEUE_FULL_POLICIES = ("disconnect", "drop-oldest", "drop-newest")
ALL_TRANSPORTS = (WEBSOCKET, LONG_POLLING, CALLBACK_POLLING, CROSS_ORIGIN_LONG_POLLING, EVENTSOURCE)


def _setting(default: object, help: str, *, cli: str | None = None) -> object:
    return field(default=default, metadata={"help": help, "cli": cli})


@dataclass
class Settings:
    timeout: int = _setting(  # type: ignore[assignment]
        30000,
        "ms the server holds a /meta/connect when it has nothing to deliver (CometD: timeout)",
    )
    interval: int = _setting(  # type: ignore[assignment]
        0, "ms a client waits after a /meta/connect reply before the next one (CometD: interval)"
    )
    max_interval: int = _setting(  # type: ignore[assignment]
        10000,
        "ms a session lives without a /meta/connect after the last connect reply before it expires"
        " (CometD: maxInterval)",
    )
    multi_session_interval: int = _setting(  # type: ignore[assignment]
        2000,
        "ms advised to a client whose held /meta/connect was displaced by another connection of the"
        " same session (CometD: multiSessionInterval)",
    )
    sweep_period: int = _setting(  # type: ignore[assignment]
        997, "ms between two sweeps for expired sessions (CometD: sweepPeriodMs)"
    )
    max_message_size: int = _setting(  # type: ignore[assignment]
        1048576,
        "largest HTTP request body or WebSocket frame in bytes; larger ones are refused with"
        " HTTP 413 or WebSocket close 1009 (CometD: maxMessageSize)",
    )
    allowed_transports: tuple[str, ...] = _setting(  # type: ignore[assignment]
        ALL_TRANSPORTS,
        "connection types offered in the handshake reply, in order of preference"
        " (CometD: allowedTransports)",
    )
    jsonp_parameter: str = _setting(  # type: ignore[assignment]
        "jsonp", "query parameter naming the JSONP callback of callback-polling (CometD: jsonp)"
    )
    max_queue: int = _setting(  # type: ignore[assignment]
        -1,
        "messages a session may have waiting before --queue-full-policy applies; -1 for no limit"
        " (CometD: maxQueue)",
    )
    queue_full_policy: str = _setting(  # type: ignore[assignment]
        "disconnect",
        "what happens when a message would exceed --max-queue: 'disconnect' ends the session (the"
        " client handshakes again and knows it missed messages), 'drop-oldest' or 'drop-newest'"
        " discard a message silently",
    )
    max_lazy_timeout: int = _setting(  # type: ignore[assignment]
        5000,
        "ms a message on a lazy channel may wait for other messages before it wakes a held connect"
        " (CometD: maxLazyTimeout)",
    )
    max_sessions_per_browser: int = _setting(  # type: ignore[assignment]
        1,
        "long-polls one browser (told apart by the --browser-cookie cookie) may hold at once; more"
        " get the multiple-clients advice and poll every --multi-session-interval; -1 for no limit"
        " (CometD: maxSessionsPerBrowser)",
    )
    browser_cookie: str = _setting(  # type: ignore[assignment]
        "BAYEUX_BROWSER",
        "name of the cookie that identifies a browser for --max-sessions-per-browser; empty to"
        " set no cookie (CometD: browserCookieName)",
    )
    ack_extension: bool = _setting(  # type: ignore[assignment]
        True, "offer the ack extension (at-least-once delivery) to clients that ask for it"
    )
    timesync_extension: bool = _setting(  # type: ignore[assignment]
        True, "answer the timesync extension's ext.timesync on meta messages"
    )
    broadcast_to_publisher: bool = _setting(  # type: ignore[assignment]
        True,
        "deliver a message to its publisher too when it is subscribed to the channel"
        " (CometD: broadcastToPublisher)",
    )

    def __post_init__(self) -> None:
        for name in ("timeout", "interval", "max_interval", "multi_session_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.sweep_period <= 0:
            raise ValueError("sweep_period must be > 0")
        if self.max_message_size < 1024:
            raise ValueError("max_message_size must be at least 1024 bytes")
        if self.max_queue < -1 or self.max_queue == 0:
            raise ValueError("max_queue must be -1 (no limit) or positive")
        if self.queue_full_policy not in QUEUE_FULL_POLICIES:
            raise ValueError(f"queue_full_policy must be one of {', '.join(QUEUE_FULL_POLICIES)}")
        if self.max_lazy_timeout < 0:
            raise ValueError("max_lazy_timeout must be >= 0")
        known = set(ALL_TRANSPORTS)
        self.allowed_transports = tuple(self.allowed_transports)
        unknown = set(self.allowed_transports) - known
        if unknown or not self.allowed_transports:
            raise ValueError(
                f"allowed_transports must be a non-empty subset of {sorted(known)}, got"
                f" {list(self.allowed_transports)}"
            )


def setting_fields() -> list:
    """The dataclass fields of Settings, for the command line and the docs."""
    return list(fields(Settings))
