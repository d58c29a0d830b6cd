"""``annotator`` CLI with a memory probe installed, for bench/mem_residual.py.

    python bench/mem_probe.py --db URL serve ...

On SIGPWR a process (the gunicorn master or a worker) writes to
``$MEM_PROBE_DIR/<pid>.txt``: Python's allocator statistics (``sys._debugmallocstats``),
glibc's per-arena figures (``malloc_info``), SQLite's own heap (``sqlite3_memory_used``),
its threads and the connection pools of the app's engines. Diagnostics only: the project
code is not changed by this wrapper beyond registering the Database objects it creates.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

OUT = Path(os.environ.get("MEM_PROBE_DIR", "/tmp/mem-probe"))
OUT.mkdir(parents=True, exist_ok=True)
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.fclose.argtypes = [ctypes.c_void_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
DATABASES: list = []


def _sqlite_lib():
    import _sqlite3

    lib = ctypes.CDLL(_sqlite3.__file__)  # the module links libsqlite3; symbols resolve through it
    try:
        lib.sqlite3_memory_used.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.restype = ctypes.c_int64
        lib.sqlite3_memory_highwater.argtypes = [ctypes.c_int]
        return lib
    except AttributeError:
        return None


def dump(_sig=None, _frame=None) -> None:
    pid = os.getpid()
    path = OUT / f"{pid}.txt"
    trim = os.environ.get("MEM_PROBE_TRIM") == "1"
    with open(path, "w") as f:
        f.write(f"pid {pid} threads {threading.active_count()} "
                f"{[t.name for t in threading.enumerate()]}\n")
        lib = _sqlite_lib()
        if lib is not None:
            f.write(f"sqlite3_memory_used {lib.sqlite3_memory_used()} "
                    f"highwater {lib.sqlite3_memory_highwater(0)}\n")
        for d in DATABASES:
            for name in ("read_engine", "write_engine"):
                eng = getattr(d, name)
                f.write(f"{name} pool: {eng.pool.status()}\n")
        import collections
        import gc

        objs = gc.get_objects()
        f.write(f"allocated_blocks {sys.getallocatedblocks()} gc_tracked_unfrozen {len(objs)} "
                f"frozen {gc.get_freeze_count()} counts {gc.get_count()}\n")
        top = collections.Counter(type(o).__name__ for o in objs).most_common(15)
        f.write(f"gc types {top}\n")
        del objs
        f.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    saved = os.dup(2)
    os.dup2(fd, 2)
    try:
        sys._debugmallocstats()  # writes to C stderr
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(fd)
    fp = libc.fopen(str(path).encode(), b"a")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    if trim:
        libc.malloc_trim(0)


def trim(_sig=None, _frame=None) -> None:
    libc.malloc_trim(0)


def collect_trim(_sig=None, _frame=None) -> None:
    import gc

    n = gc.collect()
    libc.malloc_trim(0)
    dump()
    (OUT / f"{os.getpid()}.gc").write_text(f"{n} {gc.get_count()} frozen {gc.get_freeze_count()}\n")


signal.signal(signal.SIGPWR, dump)
signal.signal(signal.SIGRTMIN + 1, trim)
signal.signal(signal.SIGRTMIN + 2, collect_trim)

import annotator.storage.db as _db  # noqa: E402

_orig_init = _db.Database.__init__


def _init(self, *a, **k):
    _orig_init(self, *a, **k)
    DATABASES.append(self)


_db.Database.__init__ = _init

from annotator.cli import main  # noqa: E402

main()
