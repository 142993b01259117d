"""A real redis-server on a free loopback port, for the tests that need one (./run-tests
installs Debian's redis-server): plain, with TLS only, or as a Sentinel watching another."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from bayeux.testing import free_port, stop_process, wait_for_port


class RedisServer:
    def __init__(self, *options: str, tls: tuple[Path, Path, Path] | None = None) -> None:
        """`tls`: (certificate, key, CA) to serve TLS only, on the port `url` names."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: ./run-tests installs it")
        self.binary = binary
        self.port = free_port()
        self.options = list(options)
        self.tls = tls
        self.process: subprocess.Popen | None = None
        # Its working directory: a replica writes the RDB of its first sync there (in the
        # directory the tests run from, otherwise), whatever `--save` says.
        self.dir = Path(tempfile.mkdtemp(prefix="bayeux-redis-"))

    @property
    def url(self) -> str:
        if self.tls is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[2]}"
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.dir.mkdir(exist_ok=True)  # again after a stop
        listen = ["--port", str(self.port)]
        if self.tls is not None:
            certificate, key, ca = self.tls
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file",
                      str(certificate), "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                      "--tls-auth-clients", "no"]  # fmt: skip
        self.process = subprocess.Popen(
            [self.binary, *self.options, *listen, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Sentinel:
    """A redis-server in Sentinel mode watching `primary` under the service name `service`."""

    def __init__(self, primary: RedisServer, work: Path, service: str = "bayeux") -> None:
        self.primary = primary
        self.service = service
        self.port = free_port()
        self.config = work / f"sentinel-{self.port}.conf"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.port}/{self.service}/0"

    def start(self) -> None:
        self.config.write_text(
            f"port {self.port}\nbind 127.0.0.1\n"
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service} 1000\n"
            f"sentinel failover-timeout {self.service} 5000\n"
        )
        self.process = subprocess.Popen(
            [self.primary.binary, str(self.config), "--sentinel"], stdout=subprocess.DEVNULL
        )
        wait_for_port(self.port, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
