"""What a target tells the other sources' views about itself: the links of a connection chain.

An application's pool leads to a pooler (PgBouncer), which leads to a database server. Each source
knows one link; a view that joins them (PgBouncer's pool chain) reads these values, which any source
may publish through its spec (``SourceSpec.links``), so no source imports another.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})  # "" is a Unix socket


def same_host(a: str, b: str) -> bool:
    """The same host as far as names tell: equal, or both this machine (a Unix socket directory included)."""
    def local(host: str) -> bool:
        return host in LOCAL_HOSTS or host.startswith("/")
    return a.lower() == b.lower() or (local(a) and local(b))


@dataclass(frozen=True)
class Endpoint:
    """A database server a target reads: where it listens (as its DSN names it) and its connections."""

    target: str
    host: str  # as connected to; a Unix socket's directory starts with "/"
    port: int
    database: str
    connections: int
    max_connections: int
    reserved_connections: int = 0  # superuser_reserved_connections (+ reserved_connections, PostgreSQL 16+)

    @property
    def available(self) -> int:
        """The connections an ordinary role (PgBouncer's server user) can open: max_connections less the reserved."""
        return self.max_connections - self.reserved_connections

    def same_server(self, host: str, port: int) -> bool:
        """Whether ``host:port`` is this target's server (any of its databases: max_connections is the server's)."""
        return port == self.port and same_host(host, self.host)

    def serves(self, host: str, port: int, database: str) -> bool:
        """Whether a client connecting to ``host:port/database`` reaches this target's server and database."""
        return port == self.port and database == self.database and same_host(host, self.host)


@dataclass(frozen=True)
class AppPool:
    """An application's own connection pool (SQLAlchemy's), as its health endpoint reports it."""

    target: str  # the application's target name
    pool: str
    checked_out: float | None
    capacity: float | None  # pool_size + max_overflow; None when not reported


Link = Endpoint | AppPool
