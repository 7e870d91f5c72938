"""Keeping the process's resident memory at its working set (glibc's malloc; elsewhere these do nothing).

An advisor run builds a large, short-lived working set (every statement's text, parse and plan). Python frees it
at the end of the run, but glibc keeps the freed pages in its heaps: the process's RSS stays at the run's peak.
``malloc_trim`` gives the free pages back to the kernel; fewer malloc arenas (one per thread by default, up to
8 per core) leave fewer heaps holding free pages. Both are the usual remedy for long-running Python services on
glibc (the MALLOC_ARENA_MAX environment variable sets the same limit).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import signal
from functools import cache

M_ARENA_MAX = -8  # mallopt's parameter number (malloc.h)
ARENAS = 2  # the main heap and one for every other thread: dbpulse's threads (advisor runs, DNS) allocate little


@cache
def _libc() -> ctypes.CDLL | None:
    """glibc, if this process runs on it (malloc_trim and mallopt are glibc's)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """At most ``arenas`` malloc heaps; call before the process starts threads. False when not applied: not glibc,
    or MALLOC_ARENA_MAX is set in the environment (the operator's choice stands)."""
    libc = _libc()
    if libc is None or "MALLOC_ARENA_MAX" in os.environ:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, arenas))


def release_freed_memory() -> bool:
    """Collect unreachable cycles, then give the heaps' free pages back to the kernel. True if glibc released
    some (False as well when not on glibc)."""
    gc.collect()
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


PR_SET_PDEATHSIG = 1  # prctl's option number (linux/prctl.h)


def die_with_parent() -> bool:
    """In a forked child: have the kernel send it SIGTERM when the thread that forked it ends (the service killed
    without its shutdown), so that no orphan goes on. Linux only; False elsewhere."""
    libc = _libc()
    prctl = getattr(libc, "prctl", None) if libc is not None else None
    if prctl is None:
        return False
    return bool(prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0)


def trim_heap() -> bool:
    """Give the heaps' free pages back to the kernel, without collecting garbage first (cheap enough to call
    after every poll: a few milliseconds). True if glibc released some."""
    libc = _libc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
