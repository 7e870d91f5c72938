"""Which databases of a cluster a target watches: ``postgres.targets[].databases``, and discovering them.

Unset, a target watches the database of its DSN only (dbpulse's behaviour before discovery). Set, the
target also watches the cluster's other databases, each a sub-target labelled ``datname``:

- ``databases: auto``: every database that allows connections, except templates and the managed clouds'
  admin databases (``CLOUD_ADMIN``);
- ``databases: [shop, billing]``: those, by name;
- ``databases: {include: [app_*], exclude: ["*_test"], max: 50, ...}``: shell-style patterns
  (``fnmatch``, case-sensitive), with a cap and the cadences of ``collectors/postgres/databases.py``.

The DSN's database is always watched (it is the main connection's), whatever the patterns say.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from pydantic import Field, model_validator

from collectors.base.settings import Strict
from collectors.postgres.query import MIN_SUPPORTED, Query

# Managed clouds' own databases: the provider's, never the application's (RDS/Aurora, Cloud SQL, Azure, AlloyDB).
CLOUD_ADMIN = frozenset({"rdsadmin", "cloudsqladmin", "azure_maintenance", "alloydbadmin"})

SHAPE = "must be auto, a list of database names, or a mapping (include, exclude, max, ...)"


class DatabaseSelection(Strict):
    """``postgres.targets[].databases``, in its mapping form (``auto`` and a list are read into it)."""

    names: list[str] | None = Field(None, min_length=1, description="these databases, by exact name")
    include: list[str] = Field(default_factory=lambda: ["*"], min_length=1,
                               description="shell-style patterns of the databases to watch")
    exclude: list[str] = Field(default_factory=list, description="shell-style patterns of databases not to watch")
    max: int = Field(50, ge=1, le=1000, description="databases watched at most (the DSN's included); the rest "
                     "are left out, by name order, and counted in dbpulse_pg_databases_left_out")
    discovery_interval: float = Field(300.0, gt=0, description="seconds between looks for new and dropped "
                                      "databases")
    refresh_interval: float = Field(300.0, ge=0, description="seconds between two reads of one database's "
                                    "tables, indexes and sizes (they rotate through the databases); 0: as "
                                    "often as the budget allows")
    budget: float = Field(0.03, gt=0, description="seconds of reads of other databases per poll, on average: "
                          "a read costlier than that waits for the budget of the next polls")
    concurrency: int = Field(1, ge=1, le=16, description="connections to other databases open at once, each "
                             "only while it is read")
    top_total: int = Field(1000, ge=1, description="tables, indexes and statements (each) exported over the "
                           "other databases together; each database's top-K shrinks to fit")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value != "auto":
                raise ValueError(f"{SHAPE}; got {value!r}")
            return {}
        if isinstance(value, list):
            if not value or not all(isinstance(v, str) and v for v in value):
                raise ValueError("a list of databases must name at least one, each a non-empty string")
            return {"names": value}
        if not isinstance(value, dict):
            raise ValueError(SHAPE)
        if "names" in value and ("include" in value or "exclude" in value):
            raise ValueError("give names, or include/exclude patterns, not both")
        return value

    def matches(self, datname: str) -> bool:
        """Whether the selection takes ``datname`` (before the cap, and whatever the cluster has)."""
        if datname in CLOUD_ADMIN:
            return False
        if self.names is not None:
            return datname in self.names
        return (any(fnmatchcase(datname, p) for p in self.include)
                and not any(fnmatchcase(datname, p) for p in self.exclude))


# Every database that could be watched: allows connections, not a template. oid is pg_stat_statements' dbid.
DISCOVERY = Query("database_discovery", {
    MIN_SUPPORTED: """
SELECT oid::bigint AS oid, datname
FROM pg_database
WHERE datallowconn AND NOT datistemplate
ORDER BY datname
""",
})


@dataclass(frozen=True)
class Discovered:
    """The outcome of one discovery: the databases to watch (name -> oid) besides the DSN's, and what was left out."""

    watched: dict[str, int]
    own_oid: int | None  # the DSN's database
    left_out: dict[str, list[str]] = field(default_factory=dict)  # reason -> names


def select(rows: list[dict[str, Any]], selection: DatabaseSelection, own: str) -> Discovered:
    """Apply ``selection`` to DISCOVERY's rows: the DSN's database ``own`` counts toward ``max`` but is not in
    ``watched`` (the main connection reads it); past ``max``, databases are left out in name order."""
    oids = {str(r["datname"]): int(r["oid"]) for r in rows}
    chosen = sorted(n for n in oids if n != own and selection.matches(n))
    room = max(0, selection.max - 1)
    left_out: dict[str, list[str]] = {}
    if len(chosen) > room:
        left_out["max"] = chosen[room:]
        chosen = chosen[:room]
    if selection.names is not None:
        missing = sorted(n for n in selection.names if n not in oids and n != own)
        if missing:
            left_out["not_found"] = missing
    return Discovered({n: oids[n] for n in chosen}, oids.get(own), left_out)
