"""The extensions CometD ships that settings turn on, each off by default: timestamp
(`--timestamp-extension`), binary (`--binary-extension`) and activity
(`--activity-max-inactivity`). Each is an `Extension` an application could add itself;
`install_configured` adds those the server's settings ask for when the server is made, ahead of
the application's own: they see a message first as it comes in (an authorizer or listener gets
the bytes the binary extension decoded) and last as it goes out (the bytes an application sends
are encoded after its own extensions saw them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from ..extension import Extension
from ..session import ServerSession
from ..settings import Settings
from .activity import Activity, ActivityExtension
from .binary import BinaryExtension
from .timestamp import TimestampExtension

if TYPE_CHECKING:
    from ..hooks import Hooks

__all__ = [
    "Activity",
    "ActivityExtension",
    "BinaryExtension",
    "ExtensionHost",
    "TimestampExtension",
    "install_configured",
]


class ExtensionHost(Protocol):
    """What installing the configured extensions needs of the server."""

    settings: Settings
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    hooks: Hooks

    def disconnect(self, session: ServerSession) -> None: ...


def configured_extensions(host: ExtensionHost) -> list[Extension]:
    """The extensions `host.settings` turn on, in the order they see incoming messages."""
    settings = host.settings
    found: list[Extension] = []
    if settings.activity_max_inactivity > 0:
        found.append(
            ActivityExtension(
                settings.activity_max_inactivity / 1000,
                host.disconnect,
                activity=Activity(settings.activity_mode),
                clock=host.clock,
            )
        )
    if settings.binary_extension:
        found.append(BinaryExtension(settings.max_binary_bytes))
    if settings.timestamp_extension:
        found.append(TimestampExtension(host.wall_clock))
    return found


def install_configured(host: ExtensionHost) -> None:
    """Puts the extensions the settings turn on ahead of any other; called once, as the
    server is made."""
    found = configured_extensions(host)
    if not found:
        return
    hooks = host.hooks
    hooks.extensions[:0] = found
    for extension in found:
        if isinstance(extension, ActivityExtension):
            hooks.session_removed.append(extension.forget)
    hooks.installed()
