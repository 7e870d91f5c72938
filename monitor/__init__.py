"""dbpulse: observability sidecar for the PostgreSQL and Redis behind a business application."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("dbpulse")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
