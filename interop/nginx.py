"""Debian's nginx in front of bayeux processes, with the site config of docs/operations.md."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from bayeux.testing import free_port, wait_for_port

from .conftest import INTEROP

SITE = INTEROP / "nginx" / "bayeux.conf"


def nginx_in_front(bayeux_url: str | list[str], work: Path) -> tuple[subprocess.Popen, str]:
    """nginx on a free loopback port proxying to `bayeux_url` (several: balanced round-robin,
    nginx's default), with the site config of docs/operations.md."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise RuntimeError("nginx is not installed; ./run-tests installs Debian's nginx")
    port = free_port()
    urls = [bayeux_url] if isinstance(bayeux_url, str) else bayeux_url
    servers = "\n".join(f"    server 127.0.0.1:{url.split(':')[2].split('/')[0]};" for url in urls)
    site = (
        SITE.read_text()
        .replace("    server 127.0.0.1:@BAYEUX_PORT@;", servers)
        .replace("@NGINX_PORT@", str(port))
    )
    (work / "site.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {work / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    (work / "nginx.conf").write_text(
        f"""daemon off;
worker_processes 1;
pid {work / "nginx.pid"};
error_log {work / "error.log"} warn;
{"user root;" if os.geteuid() == 0 else ""}
events {{ worker_connections 1024; }}
http {{
    access_log {work / "access.log"};
{temp}
    include {work / "site.conf"};
}}
"""
    )
    process = subprocess.Popen([nginx, "-p", str(work), "-c", str(work / "nginx.conf")])
    wait_for_port(port, process)
    return process, f"http://127.0.0.1:{port}/cometd"
