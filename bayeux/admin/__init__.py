"""The admin page: a live view of the server (or of every process of a deployment on Redis)
served by the server itself, behind its own token; see docs/admin.md.

It reads the core's state (sessions, the subscription tree, the counters) and never changes
it but through the server's public API (`disconnect`, `publish`, an extension while the page
is watched)."""

from __future__ import annotations

from .auth import AdminAuthorizer
from .site import Admin

__all__ = ["Admin", "AdminAuthorizer"]
