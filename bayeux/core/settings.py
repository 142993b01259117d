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
