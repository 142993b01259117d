"""`python -m bayeux`: serve a Bayeux endpoint with the in-memory engine."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import logging
import signal
import sys
from collections.abc import Callable
from dataclasses import MISSING

from tornado.netutil import bind_sockets

from . import __version__
from .connection.listener import tls_context
from .core.server import BayeuxServer
from .core.settings import Settings, setting_fields
from .endpoint import Endpoint
from .workers import run_workers

log = logging.getLogger("bayeux")


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
    listener = endpoint.listener(
        args.path,
        health_path=args.health_path,
        metrics_path=args.metrics_path,
        xheaders=args.xheaders,
        ssl_options=tls,
    )
    endpoint.start()
    if engine is not None:
        await _engine_ready(endpoint, args.redis_ready_wait / 1000)
    # Several workers share the port: the kernel spreads connections among them, to those
    # that have opened it.
    listener.add_sockets(bind_sockets(args.port, args.host, reuse_port=args.reuse_port))
    scheme = "https" if tls else "http"
    log.info("bayeux serving %s://%s:%d%s", scheme, args.host, args.port, args.path)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down: releasing held connects", extra={"event": "drain"})
    listener.stop()
    await endpoint.shutdown(args.drain_timeout / 1000)
    log.info("stopped")


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
    if args.workers > 1:
        return run_workers(args.workers, sys.argv[1:] if argv is None else argv)
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


def _importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    sys.exit(main())
