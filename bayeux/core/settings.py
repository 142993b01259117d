"""Server settings, named after CometD's and with CometD's defaults where CometD has one.

Every field carries its help text; the command line is generated from this class, so `--help`
documents each setting exactly once.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, TypeVar

LONG_POLLING = "long-polling"
CALLBACK_POLLING = "callback-polling"
WEBSOCKET = "websocket"
# Faye's names: long-polling with CORS, and a Server-Sent Events stream for deliveries.
CROSS_ORIGIN_LONG_POLLING = "cross-origin-long-polling"
EVENTSOURCE = "eventsource"
QUEUE_FULL_POLICIES = ("disconnect", "drop-oldest", "drop-newest")
ACTIVITY_MODES = ("client", "client-server")
ALL_TRANSPORTS = (WEBSOCKET, LONG_POLLING, CALLBACK_POLLING, CROSS_ORIGIN_LONG_POLLING, EVENTSOURCE)

T = TypeVar("T")


def _setting(default: T, help: str, *, cli: str | None = None) -> T:
    """A field with its help text (and its option's name when it is not the field's)."""
    described: T = field(default=default, metadata={"help": help, "cli": cli})
    return described


@dataclass
class Settings:
    """Every setting of the server, each a field with its default and help text; `python -m
    bayeux` has one option per field (`max_interval` is `--max-interval`). Durations are in
    milliseconds; the `*_seconds` properties give them in seconds. Invalid values raise
    ValueError when the object is made.

    Examples:
        >>> settings = Settings(timeout=20000, max_queue=1000)
        >>> settings.timeout_seconds, settings.max_interval
        (20.0, 10000)
        >>> Settings(max_queue=0)
        Traceback (most recent call last):
        ...
        ValueError: max_queue must be -1 (no limit) or positive

    Added in version 0.1.0."""

    timeout: int = _setting(
        30000,
        "ms the server holds a /meta/connect when it has nothing to deliver (CometD: timeout)",
    )
    interval: int = _setting(
        0, "ms a client waits after a /meta/connect reply before the next one (CometD: interval)"
    )
    max_interval: int = _setting(
        10000,
        "ms a session lives without a /meta/connect after the last connect reply before it expires"
        " (CometD: maxInterval)",
    )
    multi_session_interval: int = _setting(
        2000,
        "ms advised to a client whose held /meta/connect was displaced by another connection of the"
        " same session (CometD: multiSessionInterval)",
    )
    sweep_period: int = _setting(
        997, "ms between two sweeps for expired sessions (CometD: sweepPeriodMs)"
    )
    max_message_size: int = _setting(
        1048576,
        "largest HTTP request body or WebSocket frame in bytes; larger ones are refused with"
        " HTTP 413 or WebSocket close 1009 (CometD: maxMessageSize)",
    )
    max_batch_messages: int = _setting(
        1000,
        "messages in one request body or WebSocket frame; more are refused with HTTP 413 or"
        " WebSocket close 1009 (a megabyte of minimal messages is ~70,000 of them: each costs"
        " CPU and a reply before anything else is served)",
    )
    allowed_transports: tuple[str, ...] = _setting(
        ALL_TRANSPORTS,
        "connection types offered in the handshake reply, in order of preference"
        " (CometD: allowedTransports)",
    )
    jsonp_parameter: str = _setting(
        "jsonp", "query parameter naming the JSONP callback of callback-polling (CometD: jsonp)"
    )
    max_queue: int = _setting(
        -1,
        "messages a session may have waiting before --queue-full-policy applies; -1 for no limit"
        " (CometD: maxQueue)",
    )
    queue_full_policy: str = _setting(
        "disconnect",
        "what happens when a message would exceed --max-queue: 'disconnect' ends the session (the"
        " client handshakes again and knows it missed messages), 'drop-oldest' or 'drop-newest'"
        " discard a message silently",
    )
    max_lazy_timeout: int = _setting(
        5000,
        "ms a message on a lazy channel may wait for other messages before it wakes a held connect"
        " (CometD: maxLazyTimeout)",
    )
    max_sessions_per_browser: int = _setting(
        1,
        "long-polls one browser (told apart by the --browser-cookie cookie) may hold at once; more"
        " get the multiple-clients advice and poll every --multi-session-interval; -1 for no limit"
        " (CometD: maxSessionsPerBrowser)",
    )
    browser_cookie: str = _setting(
        "BAYEUX_BROWSER",
        "name of the cookie that identifies a browser: a session is bound to the browser that"
        " made it, and --max-sessions-per-browser counts by it; empty to set no cookie (CometD:"
        " browserCookieName)",
    )
    browser_cookie_same_site: str = _setting(
        "",
        "SameSite attribute of the browser cookie: Strict, Lax or None (None needs it Secure);"
        " empty to leave it out (browsers then treat it as Lax)",
    )
    browser_cookie_secure: str = _setting(
        "auto",
        "Secure attribute of the browser cookie: auto (when the request came over https, or a"
        " trusted proxy says so with --xheaders), on, or off",
    )
    browser_cookie_domain: str = _setting(
        "", "Domain attribute of the browser cookie; empty for the host that set it"
    )
    browser_cookie_max_age: int = _setting(
        -1, "seconds the browser cookie lasts (Max-Age); -1 for the browser's session"
    )
    browser_cookie_partitioned: bool = _setting(
        False, "mark the browser cookie Partitioned (CHIPS: a cookie per top-level site)"
    )
    require_handshake_per_connection: bool = _setting(
        False,
        "a WebSocket may only carry sessions handshaken on it: a clientId made elsewhere (another"
        " socket, a long-poll) gets 402 with handshake advice there (CometD:"
        " requireHandshakePerConnection)",
    )
    trust_cookieless_clients: bool = _setting(
        True,
        "serve a request for a browser's session that carries no browser cookie at all"
        " (non-browser clients send none); off: only the browser that made a session may use it"
        " (CometD: trustClientSession)",
    )
    max_queue_bytes: int = _setting(
        4 * 1024 * 1024,
        "bytes of messages a session may have waiting (its queue, plus batches the ack extension"
        " keeps until acknowledged) before --queue-full-policy applies; -1 for no limit",
    )
    max_subscriptions: int = _setting(
        1024,
        "channels and patterns one session may subscribe to; more get"
        " 403:<channel>:Too many subscriptions",
    )
    max_subscription_bytes: int = _setting(
        2 * 1024 * 1024,
        "bytes of memory one session's subscriptions may take (each is charged an upper bound of"
        " its cost: ~256 bytes, its length, and ~320 bytes a segment); a subscribe beyond it gets"
        " 403:<channel>:Too many subscriptions",
    )
    max_address_bytes: int = _setting(
        128 * 1024 * 1024,
        "bytes of memory the sessions one client address (an IPv6 /64) created may hold"
        " together: ~1 KiB a session, plus their queues, unacknowledged batches and"
        " subscriptions; past it a handshake gets 503::Address over its memory budget, a"
        " subscribe 403:<channel>:Too many subscriptions, and a delivery --queue-full-policy;"
        " -1 for no limit",
    )
    max_service_calls: int = _setting(
        16,
        "asynchronous service calls one session may have in progress; more are answered with"
        " 429:<channel>:Too many service calls",
    )
    max_session_attribute_bytes: int = _setting(
        16384,
        "bytes one session's attributes may take (names and JSON values); setting more raises"
        " ValueError in the application; -1 for no limit",
    )
    max_extension_backlog: int = _setting(
        1000,
        "messages of one session (and of the server side's publishes) that may wait behind an"
        " asynchronous outgoing extension, more being dropped (counted as extension-backlog);"
        " and messages of one client address that may be handled at once (waiting on"
        " asynchronous extensions, policy, authorizers, listeners or services: their decoded"
        " memory counts against --max-address-bytes too), a batch past either getting"
        " 503::Too many messages waiting with advice to retry",
    )
    max_channel_length: int = _setting(
        1024,
        "characters in a channel name or subscription pattern; longer ones get"
        " 405:<channel>:Invalid channel",
    )
    max_channel_segments: int = _setting(
        32, "segments in a channel name or subscription pattern; more get 405 as above"
    )
    max_sessions: int = _setting(
        100000,
        "sessions the server keeps at once; a handshake beyond it gets 503::Too many sessions with"
        " advice to handshake again later",
    )
    max_sessions_per_connection: int = _setting(
        16,
        "live sessions one WebSocket connection may create; more handshakes get"
        " 503::Too many sessions on this connection",
    )
    max_sessions_per_user: int = _setting(
        100,
        "sessions one user (BayeuxServer.associate) may have in the deployment; associating one"
        " more raises TooManySessions, and a handshake whose policy does gets"
        " 403::Too many sessions for this user; -1 for no limit",
    )
    max_handshakes_per_address: int = _setting(
        200,
        "handshakes one client address (an IPv6 /64) may make per --handshake-window; more get"
        " 429::Too many handshakes from this address with advice to retry after the window;"
        " -1 for no limit",
    )
    handshake_window: int = _setting(10000, "ms over which --max-handshakes-per-address counts")
    ack_extension: bool = _setting(
        True, "offer the ack extension (at-least-once delivery) to clients that ask for it"
    )
    timesync_extension: bool = _setting(
        True, "answer the timesync extension's ext.timesync on meta messages"
    )
    timestamp_extension: bool = _setting(
        False,
        "stamp every message the server sends with a timestamp field, in the server's time zone"
        " (CometD: TimestampExtension)",
    )
    binary_extension: bool = _setting(
        False,
        "decode the binary data CometD's BinaryExtension sends (Z85 text in data.data, with"
        " ext.binary) into bytes for the server's hooks, and send bytes the server publishes"
        " the same way (CometD: BinaryExtension)",
    )
    max_binary_bytes: int = _setting(
        1024 * 1024,
        "bytes one message's binary data may decode to under --binary-extension; a larger one,"
        " or one that is not Z85, gets 404:<channel>:Message deleted",
    )
    activity_max_inactivity: int = _setting(
        0,
        "ms a session may be idle before it is disconnected (told reconnect: none) at its next"
        " /meta/connect; what counts as idle is --activity-mode; 0 for never (CometD:"
        " ActivityExtension)",
    )
    activity_mode: str = _setting(
        "client",
        "what --activity-max-inactivity counts as activity: 'client' (what the client sends"
        " besides /meta/connect) or 'client-server' (that, and what the server sends it)",
    )
    ws_compression: bool = _setting(
        True,
        "negotiate permessage-deflate with WebSocket clients that offer it, without context"
        " takeover (each frame compressed once for every subscriber, no per-socket window);"
        " standalone server only (CometD: on by default)",
    )
    replay_channels: tuple[str, ...] = _setting(
        (),
        "channels (patterns such as /event/**) whose events are kept and can be replayed from a"
        " replay id, as Salesforce Streaming clients ask with ext.replay; off by default",
    )
    replay_max_events: int = _setting(
        1000, "events kept per replay channel; past it the oldest are dropped"
    )
    replay_retention: int = _setting(86400000, "ms an event stays replayable (Salesforce: 24 h)")
    broadcast_to_publisher: bool = _setting(
        True,
        "deliver a message to its publisher too when it is subscribed to the channel"
        " (CometD: broadcastToPublisher)",
    )

    max_connections: int = _setting(
        10000,
        "TCP connections (HTTP and WebSocket) the standalone server accepts at once; more are"
        " closed as soon as they are accepted",
    )
    socket_send_buffer: int = _setting(
        128 * 1024,
        "bytes of kernel send buffer each connection of the standalone server gets (SO_SNDBUF;"
        " the kernel doubles it): what a client that stops reading holds in the kernel, and the"
        " most one connection has in flight (a 50 ms round trip caps it near 5 MB/s); 0 leaves"
        " the kernel's own sizing (Linux grows it to 4 MiB)",
    )
    idle_timeout: int = _setting(
        20000,
        "ms an HTTP connection may take to complete its TLS handshake, to send a request's"
        " headers, or stay idle between two requests, before it is closed (slow clients,"
        " slow-loris)",
    )
    body_timeout: int = _setting(
        30000, "ms an HTTP request may take to send its body before the connection is closed"
    )
    ws_ping_interval: int = _setting(
        25000,
        "ms between WebSocket pings; a peer that has not answered by the next ping is dropped"
        " (half-open connections); 0 for no pings",
    )

    # Durations are set in ms (as CometD's are); the code reads them in seconds.

    @property
    def timeout_seconds(self) -> float:
        """`timeout` in seconds.

        Examples:
            >>> Settings(timeout=20_000).timeout_seconds
            20.0

        Added in version 0.3.0."""
        return self.timeout / 1000

    @property
    def interval_seconds(self) -> float:
        """`interval` in seconds.

        Examples:
            >>> Settings(interval=500).interval_seconds
            0.5

        Added in version 0.3.0."""
        return self.interval / 1000

    @property
    def max_interval_seconds(self) -> float:
        """`max_interval` in seconds.

        Examples:
            >>> Settings(max_interval=15_000).max_interval_seconds
            15.0

        Added in version 0.3.0."""
        return self.max_interval / 1000

    @property
    def max_lazy_timeout_seconds(self) -> float:
        """`max_lazy_timeout` in seconds.

        Examples:
            >>> Settings(max_lazy_timeout=2000).max_lazy_timeout_seconds
            2.0

        Added in version 0.3.0."""
        return self.max_lazy_timeout / 1000

    @property
    def handshake_window_seconds(self) -> float:
        """`handshake_window` in seconds.

        Examples:
            >>> Settings(handshake_window=60_000).handshake_window_seconds
            60.0

        Added in version 0.3.0."""
        return self.handshake_window / 1000

    @property
    def idle_timeout_seconds(self) -> float:
        """`idle_timeout` in seconds.

        Examples:
            >>> Settings(idle_timeout=75_000).idle_timeout_seconds
            75.0

        Added in version 0.3.0."""
        return self.idle_timeout / 1000

    @property
    def body_timeout_seconds(self) -> float:
        """`body_timeout` in seconds.

        Examples:
            >>> Settings(body_timeout=5000).body_timeout_seconds
            5.0

        Added in version 0.3.0."""
        return self.body_timeout / 1000

    @property
    def ws_ping_interval_seconds(self) -> float:
        """`ws_ping_interval` in seconds.

        Examples:
            >>> Settings(ws_ping_interval=10_000).ws_ping_interval_seconds
            10.0

        Added in version 0.3.0."""
        return self.ws_ping_interval / 1000

    @property
    def replay_retention_seconds(self) -> float:
        """`replay_retention` in seconds.

        Examples:
            >>> Settings(replay_retention=3_600_000).replay_retention_seconds
            3600.0

        Added in version 0.3.0."""
        return self.replay_retention / 1000

    @property
    def sweep_period_seconds(self) -> float:
        """`sweep_period` in seconds.

        Examples:
            >>> Settings(sweep_period=250).sweep_period_seconds
            0.25

        Added in version 0.3.0."""
        return self.sweep_period / 1000

    def __post_init__(self) -> None:
        for name in ("timeout", "interval", "max_interval", "multi_session_interval"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.sweep_period <= 0:
            raise ValueError("sweep_period must be > 0")
        if self.max_message_size < 1024:
            raise ValueError("max_message_size must be at least 1024 bytes")
        if self.browser_cookie_same_site not in ("", "Strict", "Lax", "None"):
            raise ValueError("browser_cookie_same_site must be Strict, Lax, None or empty")
        if self.browser_cookie_secure not in ("auto", "on", "off"):
            raise ValueError("browser_cookie_secure must be auto, on or off")
        if self.browser_cookie_same_site == "None" and self.browser_cookie_secure == "off":
            raise ValueError("a SameSite=None browser cookie must be Secure")
        for name in ("browser_cookie", "browser_cookie_domain"):
            value = getattr(self, name)
            if any(not c.isprintable() or c in ' ;,="\\' for c in value):
                raise ValueError(f"{name} {value!r} has characters a cookie cannot carry")
        if self.browser_cookie_max_age < -1:
            raise ValueError("browser_cookie_max_age must be -1 (the session) or >= 0")
        if self.replay_max_events < 1 or self.replay_retention < 1:
            raise ValueError("replay_max_events and replay_retention must be positive")
        for pattern in self.replay_channels:
            if not pattern.startswith("/") or pattern.startswith(("/meta/", "/service/")):
                raise ValueError(f"replay channel {pattern!r} must be a broadcast channel pattern")
        if self.max_queue < -1 or self.max_queue == 0:
            raise ValueError("max_queue must be -1 (no limit) or positive")
        if self.queue_full_policy not in QUEUE_FULL_POLICIES:
            raise ValueError(f"queue_full_policy must be one of {', '.join(QUEUE_FULL_POLICIES)}")
        for name in (
            "max_subscriptions",
            "max_subscription_bytes",
            "max_batch_messages",
            "max_service_calls",
            "max_extension_backlog",
            "max_channel_length",
            "max_channel_segments",
            "max_sessions",
            "max_sessions_per_connection",
            "handshake_window",
            "max_connections",
            "idle_timeout",
            "body_timeout",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in (
            "max_queue_bytes",
            "max_handshakes_per_address",
            "max_address_bytes",
            "max_session_attribute_bytes",
            "max_sessions_per_user",
        ):
            if getattr(self, name) < -1 or getattr(self, name) == 0:
                raise ValueError(f"{name} must be -1 (no limit) or positive")
        if self.socket_send_buffer < 0:
            raise ValueError("socket_send_buffer must be >= 0")
        if self.ws_ping_interval < 0:
            raise ValueError("ws_ping_interval must be >= 0")
        if self.max_lazy_timeout < 0:
            raise ValueError("max_lazy_timeout must be >= 0")
        if self.activity_max_inactivity < 0:
            raise ValueError("activity_max_inactivity must be >= 0 (0: never)")
        if self.activity_mode not in ACTIVITY_MODES:
            raise ValueError(f"activity_mode must be one of {', '.join(ACTIVITY_MODES)}")
        if self.max_binary_bytes <= 0:
            raise ValueError("max_binary_bytes must be > 0")
        known = set(ALL_TRANSPORTS)
        self.allowed_transports = tuple(self.allowed_transports)
        unknown = set(self.allowed_transports) - known
        if unknown or not self.allowed_transports:
            raise ValueError(
                f"allowed_transports must be a non-empty subset of {sorted(known)}, got"
                f" {list(self.allowed_transports)}"
            )


def setting_fields() -> list[Field[Any]]:
    """The dataclass fields of Settings, for the command line and the docs."""
    return list(fields(Settings))
