"""WAL, checkpoints, the background writer, the archiver and pg_stat_io, as one poll read them.

``WalRow`` is named like the columns of ``WAL`` in ``queries.py``, ``IoRow``
like those of ``IO`` (16+); ``add_samples`` names the metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.base.samples import SampleList


@dataclass(frozen=True)
class WalRow:
    wal_bytes: float = 0.0  # this server's WAL position (replayed position on a standby)
    wal_records: float | None = None  # pg_stat_wal, 14+
    wal_fpi: float | None = None
    wal_buffers_full: float | None = None
    checkpoints_timed: float = 0.0
    checkpoints_requested: float = 0.0
    checkpoint_write_seconds: float = 0.0
    checkpoint_sync_seconds: float = 0.0
    buffers_checkpoint: float = 0.0
    buffers_clean: float = 0.0
    buffers_backend: float | None = None
    maxwritten_clean: float = 0.0
    archived_count: float = 0.0
    failed_count: float = 0.0
    last_archived_time: float | None = None
    last_failed_time: float | None = None


@dataclass(frozen=True)
class IoRow:
    backend_type: str
    object: str
    context: str
    read_bytes: float | None = None
    write_bytes: float | None = None
    extend_bytes: float | None = None
    hits: float | None = None
    evictions: float | None = None
    read_seconds: float | None = None
    write_seconds: float | None = None


@dataclass
class Wal:
    row: WalRow
    archive_mode: str = "off"
    pending_segments: int | None = None  # None: archive_mode off, or pg_ls_archive_statusdir() not allowed
    io: list[IoRow] = field(default_factory=list)  # 16+

    @property
    def archiving(self) -> bool:
        return self.archive_mode != "off"

    @property
    def archiver_failing(self) -> bool:
        """The last archiving attempt failed (and nothing was archived since)."""
        failed, archived = self.row.last_failed_time, self.row.last_archived_time
        return failed is not None and (archived is None or failed > archived)

    def add_samples(self, out: SampleList) -> None:
        r = self.row
        out.add("dbpulse_pg_wal_bytes_total", r.wal_bytes)
        out.add("dbpulse_pg_wal_records_total", r.wal_records)
        out.add("dbpulse_pg_wal_full_page_images_total", r.wal_fpi)
        out.add("dbpulse_pg_wal_buffers_full_total", r.wal_buffers_full)
        out.add("dbpulse_pg_checkpoints_total", r.checkpoints_timed, kind="timed")
        out.add("dbpulse_pg_checkpoints_total", r.checkpoints_requested, kind="requested")
        out.add("dbpulse_pg_checkpoint_seconds_total", r.checkpoint_write_seconds, phase="write")
        out.add("dbpulse_pg_checkpoint_seconds_total", r.checkpoint_sync_seconds, phase="sync")
        out.add("dbpulse_pg_buffers_written_total", r.buffers_checkpoint, writer="checkpointer")
        out.add("dbpulse_pg_buffers_written_total", r.buffers_clean, writer="bgwriter")
        out.add("dbpulse_pg_buffers_written_total", r.buffers_backend, writer="backend")
        out.add("dbpulse_pg_bgwriter_maxwritten_clean_total", r.maxwritten_clean)
        if self.archiving:
            out.add("dbpulse_pg_archiver_archived_total", r.archived_count)
            out.add("dbpulse_pg_archiver_failed_total", r.failed_count)
            out.add("dbpulse_pg_archiver_last_archived_timestamp_seconds", r.last_archived_time)
            out.add("dbpulse_pg_archiver_last_failed_timestamp_seconds", r.last_failed_time)
            out.add("dbpulse_pg_archiver_pending_segments", self.pending_segments)
        for io in self.io:
            labels = {"backend_type": io.backend_type, "object": io.object, "context": io.context}
            for operation in ("read", "write", "extend"):
                out.add("dbpulse_pg_io_bytes_total", getattr(io, f"{operation}_bytes"), **labels, operation=operation)
            for operation in ("read", "write"):
                out.add("dbpulse_pg_io_seconds_total", getattr(io, f"{operation}_seconds"), **labels,
                        operation=operation)
            out.add("dbpulse_pg_io_hits_total", io.hits, **labels)
            out.add("dbpulse_pg_io_evictions_total", io.evictions, **labels)
