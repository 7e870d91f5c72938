"""Managed PostgreSQL (RDS/Aurora, Cloud SQL, Azure, AlloyDB): the databases the provider keeps for itself.

Each provider puts an administration database in every cluster: its own agent's, not the application's,
and closed to the customer's roles. dbpulse leaves them out wherever it lists databases (statistics, sizes,
running VACUUMs, standby conflicts; discovery as well), as it leaves out the templates where they mean
nothing: a metric or an alert about one would name something nobody can act on, and reading one may be
refused. Two things still count them: the XID ages (wraparound is the whole cluster's: an old admin
database stops every database's writes, and is the provider's to fix), and the connections (their sessions
take slots of max_connections).
"""

from __future__ import annotations

ADMIN_DATABASES: tuple[str, ...] = (
    "rdsadmin",  # Amazon RDS and Aurora
    "cloudsqladmin",  # Google Cloud SQL
    "azure_maintenance",  # Azure Database for PostgreSQL
    "alloydbadmin",  # Google AlloyDB
)


def is_admin_database(datname: str) -> bool:
    """Whether ``datname`` is one of the providers' administration databases."""
    return datname in ADMIN_DATABASES


def not_admin_database(column: str = "datname") -> str:
    """An SQL condition true for every database but the providers' (``column`` holds the name; NULL passes)."""
    names = ", ".join(f"'{name}'" for name in ADMIN_DATABASES)
    return f"({column} IS NULL OR {column} NOT IN ({names}))"
