"""The endpoint as an ASGI application (Endpoint.asgi()), for benchmarks/servers.py's
`bayeux-asgi` (uvicorn with httptools and wsproto). BAYEUX_TIMEOUT_MS sets the connect hold."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bayeux import Endpoint, Settings  # noqa: E402

endpoint = Endpoint(
    Settings(
        timeout=int(os.environ.get("BAYEUX_TIMEOUT_MS", "30000")),
        max_sessions_per_browser=-1,
        max_handshakes_per_address=-1,
    )
)
app = endpoint.asgi()
