"""`python -m bayeux`: serve a Bayeux endpoint with the in-memory engine."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import MISSING
from typing import Any
from urllib.parse import urlsplit

from tornado.netutil import bind_sockets

from . import __version__
from .connection.collector import Collector
from .connection.files import open_file_shortfall
from .connection.listener import tls_context
from .core.server import BayeuxServer
from .core.settings import Settings, setting_fields
from .endpoint import Endpoint
from .workers import run_workers

log = logging.getLogger("bayeux")
# Connections waiting to be accepted that the kernel keeps per listening socket (it caps this
# at net.core.somaxconn): Tornado's 128 overflowed under a burst of clients, each overflow
# costing its client a SYN retransmitted a second or more later.
BACKLOG = 4096

# Where --admin-token is read from when the option is not given.
ADMIN_TOKEN_VARIABLE = "BAYEUX_ADMIN_TOKEN"


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        epilog="`bayeux publish --help`: publish to a deployment on Redis from outside it.",
        prog="python -m bayeux",
        description="Serve a Bayeux 1.0 (CometD) endpoint over WebSocket, long-polling and"
        " callback-polling. Durations are in milliseconds, as in CometD.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"bayeux {__version__}")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="TCP port to listen on")
    parser.add_argument("--path", default="/cometd", help="URL path of the endpoint")
    parser.add_argument(
        "--app",
        metavar="MODULE:FUNCTION",
        help="the application's hooks: FUNCTION(server) is called with the BayeuxServer in"
        " every worker before it serves (install a security policy, authorizers, listeners,"
        " services, extensions there)",
    )
    parser.add_argument(
        "--allowed-origins",
        default="*",
        help="comma-separated origins allowed cross-origin (CORS, WebSocket); * allows any",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="run as one process of a deployment sharing sessions and messages through this"
        " Redis: redis://host:port/db, rediss://... (TLS) or"
        " redis+sentinel://host:port[,host:port]/service[/db] (needs the redis package: pip"
        " install 'bayeux-server[redis]'); off by default (everything in this process)",
    )
    parser.add_argument(
        "--redis-prefix", default="bayeux", help="prefix of the deployment's Redis keys"
    )
    parser.add_argument(
        "--redis-outbox-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="bytes of messages published while Redis is unreachable, kept to write to the log"
        " when it is back; past it the oldest are dropped (and counted)",
    )
    parser.add_argument(
        "--redis-ready-wait",
        type=int,
        default=10000,
        help="ms a process waits for Redis before it opens its port (so that, with --workers,"
        " connections go to the workers that can serve them); after that it opens it anyway"
        " and answers with retry advice until Redis is reachable",
    )
    parser.add_argument(
        "--redis-log-length",
        type=int,
        default=100_000,
        help="entries the message log keeps at most (about: trimmed in whole blocks)",
    )
    parser.add_argument(
        "--redis-log-retention",
        type=int,
        default=300_000,
        help="ms the message log keeps an entry; a session whose position is older than the"
        " log can no longer be taken over (its client handshakes again); above --max-interval",
    )
    parser.add_argument(
        "--redis-sync-interval",
        type=int,
        default=250,
        help="ms between two saves of session positions; after a crash a client may get again"
        " what it received in the last interval",
    )
    parser.add_argument(
        "--redis-handoff-timeout",
        type=int,
        default=2000,
        help="ms a process waits for another one to let go of a session before taking it",
    )
    # Set by --workers on the processes it starts (bayeux/workers.py).
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the port (SO_REUSEPORT); above 1 needs --redis",
    )
    parser.add_argument(
        "--xheaders",
        action="store_true",
        help="take the client's address from a reverse proxy's X-Real-IP / X-Forwarded-For"
        " headers (for the per-address limits and logs; connections, which are the proxy's, are"
        " then not charged to an address) and the scheme from X-Forwarded-Proto / X-Scheme (for"
        " the request context hooks see); only behind a proxy that sets them",
    )
    parser.add_argument(
        "--certfile", metavar="PEM", help="serve https:// and wss:// with this certificate chain"
    )
    parser.add_argument(
        "--keyfile", metavar="PEM", help="the private key of --certfile (if not in that file)"
    )
    parser.add_argument(
        "--ca-file",
        metavar="PEM",
        help="require client certificates signed by these CAs (mutual TLS); with --certfile",
    )
    parser.add_argument(
        "--metrics-path",
        metavar="PATH",
        help="serve Prometheus metrics at this path (needs prometheus-client: pip install"
        " 'bayeux-server[metrics]'); off by default",
    )
    parser.add_argument(
        "--health-path",
        metavar="PATH",
        help="serve a health check at this path: 200 while serving and ready (Redis connected"
        " when --redis is set), 503 while draining; off by default",
    )
    parser.add_argument(
        "--admin-path",
        metavar="PATH",
        help="serve the admin page (sessions, channels, rates; disconnect a session, publish a"
        " test message; the whole deployment with --redis) at this path, behind --admin-token;"
        " off by default",
    )
    parser.add_argument(
        "--admin-token",
        metavar="TOKEN",
        help=f"the admin page's token, 16 to 256 printable characters; default: the"
        f" {ADMIN_TOKEN_VARIABLE} environment variable (which, unlike an option, other users"
        " of the machine cannot read); --admin-path needs one",
    )
    parser.add_argument(
        "--drain-timeout",
        type=int,
        default=5000,
        help="ms a shutdown (SIGTERM, SIGINT) may take: held connects are answered with advice"
        " to come back, WebSockets closed with 1001 after their pending frames, EventSource"
        " streams ended, the Redis outbox relayed",
    )
    parser.add_argument(
        "--log-format",
        default="text",
        choices=["text", "json"],
        help="log lines as text, or as one JSON object each (with an 'event' field on session,"
        " refusal and drain events); never with clientIds or message data",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="logging threshold",
    )
    group = parser.add_argument_group("Bayeux settings (CometD names in parentheses)")
    for f in setting_fields():
        default = f.default if f.default is not MISSING else None
        help_text = f.metadata["help"]
        if isinstance(default, bool):
            group.add_argument(
                _option(f.name),
                dest=f.name,
                default=default,
                action=argparse.BooleanOptionalAction,
                help=help_text,
            )
        elif isinstance(default, tuple):
            group.add_argument(
                _option(f.name),
                dest=f.name,
                default=",".join(default),
                help=help_text + "; comma-separated",
            )
        else:
            group.add_argument(
                _option(f.name), dest=f.name, type=type(default), default=default, help=help_text
            )
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    values = {}
    for f in setting_fields():
        value = getattr(args, f.name)
        if isinstance(f.default, tuple):
            value = tuple(v.strip() for v in value.split(",") if v.strip())
        values[f.name] = value
    return Settings(**values)


async def serve(args: argparse.Namespace) -> None:
    engine = None
    if args.redis:
        from .engines.redis import RedisEngine  # checked importable in main()

        engine = RedisEngine(
            args.redis,
            args.redis_prefix,
            log_length=args.redis_log_length,
            log_retention=args.redis_log_retention / 1000,
            sync_interval=args.redis_sync_interval / 1000,
            handoff_timeout=args.redis_handoff_timeout / 1000,
            outbox_bytes=args.redis_outbox_bytes,
        )
    endpoint = Endpoint(
        settings_from(args),
        allowed_origins=tuple(o.strip() for o in args.allowed_origins.split(",") if o.strip()),
        engine=engine,
    )
    if args.app:
        application_hooks(args.app)(endpoint.server)
    tls = tls_context(args.certfile, args.keyfile, args.ca_file) if args.certfile else None
    if args.admin_path:
        endpoint.admin(admin_token(args))
    extra, workers_metrics = {}, None
    if args.reuse_port and args.metrics_path and engine is not None:
        # One of --workers: a scrape answers for every worker of the port.
        workers_metrics = _workers_metrics(endpoint)
        extra[args.metrics_path] = workers_metrics.answer
    listener = endpoint.listener(
        args.path,
        health_path=args.health_path,
        metrics_path=None if workers_metrics is not None else args.metrics_path,
        xheaders=args.xheaders,
        ssl_options=tls,
        extra=extra,
        admin_path=args.admin_path,
    )
    endpoint.start()
    if workers_metrics is not None:
        workers_metrics.deployment.start()
    if engine is not None:
        await _engine_ready(endpoint, args.redis_ready_wait / 1000)
    # Before the port opens: a SIGTERM that comes as soon as the server answers must drain it,
    # not kill it (a fresh-clone CI run got -15 from bayeux.testing.stop_process's example).
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Several workers share the port: the kernel spreads connections among them, to those
    # that have opened it.
    sockets = bind_sockets(args.port, args.host, reuse_port=args.reuse_port, backlog=BACKLOG)
    listener.add_sockets(sockets)
    Collector().start()  # what survives a full collection is not walked again
    port = sockets[0].getsockname()[1] if sockets else args.port
    if args.reuse_port:
        # One of --workers: the parent's banner says the rest, once.
        log.info("worker %d serving %s", os.getpid(), served_url(args, port))
    else:
        announce(banner(args, endpoint.settings, port, _addresses(sockets)), args.log_format)

    await stop.wait()
    log.info("shutting down: releasing held connects", extra={"event": "drain"})
    listener.stop()
    await endpoint.shutdown(args.drain_timeout / 1000)
    if workers_metrics is not None:
        await workers_metrics.deployment.stop()
    log.info("stopped")


def admin_token(args: argparse.Namespace) -> str | None:
    """--admin-token, or else the environment variable's value."""
    token: str | None = args.admin_token or os.environ.get(ADMIN_TOKEN_VARIABLE) or None
    return token


def _workers_metrics(endpoint: Endpoint) -> Any:
    from .admin.deployment import deployment_of
    from .admin.metrics import WorkerMetrics

    deployment = deployment_of(endpoint)
    # The workers of one --workers, on this host: one scrape target.
    deployment.group = f"{socket.gethostname()}:{os.getppid()}"
    return WorkerMetrics(endpoint, deployment)


def served_url(args: argparse.Namespace, port: int) -> str:
    """The endpoint's URL as the options make it (the port the one bound)."""
    scheme = "https" if args.certfile else "http"
    return f"{scheme}://{_host_port(args.host, port)}{args.path}"


# The limits the banner names: what bounds what an anonymous client can grow, and the server.
BANNER_LIMITS = (
    "max_sessions",
    "max_connections",
    "max_sessions_per_user",
    "max_message_size",
    "max_batch_messages",
    "max_queue",
    "max_queue_bytes",
    "max_subscriptions",
    "max_address_bytes",
    "max_handshakes_per_address",
)


def banner(
    args: argparse.Namespace, settings: Settings, port: int, listening: list[str]
) -> dict[str, Any]:
    """What the server says it is once it serves: its URL, transports, host, engine, workers,
    main limits and the paths it answers besides the endpoint. Never a secret: a Redis URL's
    password and query values are masked (`redacted_url`)."""
    record: dict[str, Any] = {
        "version": __version__,
        "url": served_url(args, port),
        "transports": list(settings.allowed_transports),
        "host": "standalone",
        "listening": listening,
        "engine": redacted_url(args.redis) if args.redis else "memory",
        "workers": args.workers,
        "limits": {name: getattr(settings, name) for name in BANNER_LIMITS},
        "allowed_origins": args.allowed_origins,
        "tls": bool(args.certfile),
    }
    if args.redis:
        record["redis_prefix"] = args.redis_prefix
    if args.ca_file:
        record["client_certificates"] = "required"
    if args.xheaders:
        record["xheaders"] = True
    if args.health_path:
        record["health_path"] = args.health_path
    if args.metrics_path:
        record["metrics_path"] = args.metrics_path
    if args.admin_path:
        record["admin_path"] = args.admin_path
    if args.app:
        record["app"] = args.app
    return record


def banner_text(record: dict[str, Any]) -> str:
    """The banner as lines of text (`--log-format text`)."""
    engine = record["engine"]
    if engine == "memory":
        engine = "memory (sessions live in this process only)"
    else:
        engine = f"redis {engine} (key prefix {record['redis_prefix']})"
    tls = "off"
    if record["tls"]:
        tls = "on, client certificates required" if "client_certificates" in record else "on"
    lines = [
        f"bayeux {record['version']} serving {record['url']}",
        f"  transports: {', '.join(record['transports'])}",
        f"  host: {record['host']} (HTTP/1.1 and WebSocket), listening on"
        f" {', '.join(record['listening'])}",
        f"  engine: {engine}",
        f"  workers: {record['workers']}",
        "  limits: "
        + ", ".join(f"{_option(name)} {value}" for name, value in record["limits"].items()),
        f"  origins allowed: {record['allowed_origins']}",
        f"  tls: {tls}",
    ]
    if record.get("xheaders"):
        lines.append("  proxy headers: trusted (--xheaders)")
    for key, label in (
        ("health_path", "health"),
        ("metrics_path", "metrics"),
        ("admin_path", "admin"),
        ("app", "app"),
    ):
        if key in record:
            lines.append(f"  {label}: {record[key]}")
    return "\n".join(lines)


def announce(record: dict[str, Any], log_format: str) -> None:
    """Logs the banner: one record, its fields as JSON fields under `--log-format json`."""
    if log_format == "json":
        log.info("bayeux serving %s", record["url"], extra={"event": "serving", **record})
    else:
        log.info("%s", banner_text(record))


# Query parameters of a Redis URL that hold no secret (redis-py's connection options).
_PLAIN_QUERY = frozenset(
    {
        "db",
        "protocol",
        "decode_responses",
        "health_check_interval",
        "socket_timeout",
        "socket_connect_timeout",
        "socket_keepalive",
        "retry_on_timeout",
        "max_connections",
        "ssl_cert_reqs",
        "ssl_check_hostname",
    }
)


def redacted_url(url: str) -> str:
    """`url` fit to be logged: the password of its user part (or the whole user part when it
    has no colon: redis://SECRET@host) and every query value but plain connection options
    are replaced by ***, and a fragment is left out."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url.partition(":")[0] + "://***"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hostport}" if colon else f"***@{hostport}"
    out = f"{parts.scheme}://{netloc}{parts.path}"
    if parts.query:
        items = []
        for item in parts.query.split("&"):
            name, equals, value = item.partition("=")
            plain = name.lower() in _PLAIN_QUERY
            items.append(f"{name}{equals}{value if plain else '***'}" if equals else name)
        out += "?" + "&".join(items)
    return out


def _addresses(sockets: list[socket.socket]) -> list[str]:
    return [_host_port(sock.getsockname()[0], sock.getsockname()[1]) for sock in sockets]


def _host_port(host: str, port: int) -> str:
    host = host or "0.0.0.0"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def application_hooks(spec: str) -> Callable[[BayeuxServer], object]:
    """The function `MODULE:FUNCTION` names (--app); ValueError with the reason if there is
    none."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"--app {spec!r}: expected MODULE:FUNCTION")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"--app {spec!r}: cannot import {module_name}: {exc}") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"--app {spec!r}: {module_name} has no function {function_name}")
    hooks: Callable[[BayeuxServer], object] = function
    return hooks


async def _engine_ready(endpoint: Endpoint, within: float) -> None:
    """Returns once the engine serves, or after `within` seconds (logged)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not endpoint.health()[1]:
        if loop.time() >= deadline:
            log.warning("redis is not reachable yet: serving with retry advice until it is")
            return
        await asyncio.sleep(0.02)


def configure_logging(form: str, level: str) -> None:
    handler = logging.StreamHandler()
    if form == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given[:1] == ["publish"]:
        if not _importable("redis"):
            print(
                "bayeux publish needs the redis package: pip install 'bayeux-server[redis]'",
                file=sys.stderr,
            )
            return 2
        from .publisher import main as publish

        return publish(given[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    problem = _problem(args)
    if problem is not None:
        parser.error(problem)  # exits with status 2, as for a malformed option
    configure_logging(args.log_format, args.log_level)
    shortfall = open_file_shortfall(args.max_connections)  # raises the soft limit first
    if shortfall is not None and not args.reuse_port:  # the parent of --workers says it once
        log.warning("%s", shortfall, extra={"event": "open-file-limit"})
    if args.workers > 1:
        record = banner(
            args,
            settings_from(args),
            args.port,
            [f"{_host_port(args.host, args.port)} (each worker)"],
        )
        return run_workers(
            args.workers,
            sys.argv[1:] if argv is None else argv,
            ready_at=(_local_address(args.host), args.port),
            on_ready=lambda: announce(record, args.log_format),
        )
    asyncio.run(serve(args))
    return 0


def _problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the options taken together, or with what they need installed."""
    try:
        settings_from(args)
    except ValueError as exc:
        return str(exc)
    if args.drain_timeout < 0:
        return "--drain-timeout must be >= 0"
    if args.app:
        try:
            application_hooks(args.app)
        except ValueError as exc:
            return str(exc)
    if (args.keyfile or args.ca_file) and not args.certfile:
        return "--keyfile and --ca-file need --certfile"
    if args.certfile:
        try:
            tls_context(args.certfile, args.keyfile, args.ca_file)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            return f"TLS: {exc}"
    problem = _admin_problem(args)
    if problem is not None:
        return problem
    if args.metrics_path and not _importable("prometheus_client"):
        return "--metrics-path needs prometheus-client: pip install 'bayeux-server[metrics]'"
    if args.workers < 1 or (args.workers > 1 and not args.redis):
        return (
            "--workers above 1 needs --redis (the workers share sessions and messages through it)"
        )
    if args.workers > 1 and args.port == 0:
        return "--workers needs a fixed --port (each worker binds it)"
    if args.redis and args.redis_log_retention <= args.max_interval:
        return "--redis-log-retention must be above --max-interval"
    if args.redis and not _importable("redis"):
        return "--redis needs the redis package: pip install 'bayeux-server[redis]'"
    return None


def _admin_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the admin page's options. A token is always needed: listening on
    loopback only says nothing of who reaches the port (a proxy on the same host forwards
    the world to it, and every local user and container can connect)."""
    if args.admin_token and not args.admin_path:
        return "--admin-token needs --admin-path"
    if not args.admin_path:
        return None
    from .admin.auth import check_token
    from .admin.site import check_path

    try:
        path = check_path(args.admin_path)
    except ValueError as exc:
        return f"--admin-path: {exc}"
    endpoint = args.path.rstrip("/")
    if path == endpoint or path.startswith(endpoint + "/") or not endpoint:
        return "--admin-path must be outside --path"
    if path in (args.health_path, args.metrics_path):
        return "--admin-path must differ from --health-path and --metrics-path"
    token = admin_token(args)
    if token is None:
        return (
            f"--admin-path needs a token: --admin-token or the {ADMIN_TOKEN_VARIABLE}"
            " environment variable"
        )
    try:
        check_token(token)
    except ValueError as exc:
        return f"--admin-token: {exc}"
    return None


def _local_address(host: str) -> str:
    """Where this machine reaches a server listening on `host` (every address: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "::1"
    return host


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
