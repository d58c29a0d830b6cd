"""The server's background process: runs the queued jobs (jobs.py), one at a time.

``annotator serve`` starts one (``start``, from the gunicorn master once it is ready) as its
own child, at the lowest CPU priority and set to die with its parent (Linux
``PR_SET_PDEATHSIG``), and stops it on the way out (``stop``): a job never outlives its
server. Stopped in the middle, the job goes back to the queue and the next start resumes it
(tokenizing goes on with the documents still without tokens; predicting with the documents
still without predictions; training starts again, its half-made model never written).

The web process never loads spaCy or Kiwi: they are imported here, by the job that needs
them, in this process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import traceback

from annotator.core.errors import AnnotatorError
from annotator.storage.jobs import Pacer, Run, Stopped, busy_path, claim, owner_id, requeue_orphans

POLL_S = 1.0  # how often an idle background process looks at the queue
STOP_GRACE_S = 10.0
RESTART_S = 5.0  # a background process that died is started again after this

_child: subprocess.Popen | None = None
_lock = threading.Lock()
_stopping = threading.Event()


def _runners():
    from annotator.services import learn, tokenize_job

    return {"tokenize": tokenize_job.run_queued, "train": learn.run_train,
            "predict": learn.run_predict}


def run_one(db, url: str, data_dir: str, job, owner: str, pacer=None, stopping=None,
            echo=None) -> str:
    """Run a claimed job to its end: ``done``, ``failed`` (with the reason), or back in the
    queue when stopped. Returns the state."""
    run = Run(db, job, owner, pacer, stopping, echo)
    try:
        result = _runners()[job.kind](run, url=url, data_dir=data_dir)
    except Stopped:
        run.requeue()
        return "queued"
    except AnnotatorError as e:
        run.finish("failed", error=e.message)
        return "failed"
    except Exception as e:  # a bug: said in the job (for the lead) and in the log
        traceback.print_exc(file=sys.stderr)
        run.finish("failed", error=f"internal error: {type(e).__name__}: {e}")
        return "failed"
    run.finish("done", result=result or {})
    return "done"


def main(argv: list[str]) -> int:
    url, data_dir = argv[0], argv[1]
    from annotator.storage.db import Database

    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    from annotator.storage.inuse import holding

    db = Database(url)
    owner = owner_id()
    pacer = Pacer(busy_path(url, data_dir))
    try:
        with holding(url, "the server's background jobs"):  # a restore waits for it (inuse.py)
            _loop(db, url, data_dir, owner, pacer, stopping)
    except AnnotatorError as e:
        print(f"annotator: background jobs did not start: {e.message}", file=sys.stderr, flush=True)
    finally:
        db.dispose()
    return 0


def _loop(db, url, data_dir, owner, pacer, stopping) -> None:
    try:
        requeue_orphans(db)
    except Exception as e:  # the database is away: stale jobs are taken over later (STALE_S)
        print(f"annotator: background jobs: {e}", file=sys.stderr, flush=True)
    while not stopping.is_set():
        try:
            job = claim(db, owner)
        except Exception as e:  # the database is away or full: try again later
            print(f"annotator: background jobs wait: {e}", file=sys.stderr, flush=True)
            db.dispose()
            stopping.wait(POLL_S * 5)
            continue
        if job is None:
            stopping.wait(POLL_S)
            continue
        run_one(db, url, data_dir, job, owner, pacer, stopping)


# --- owned by the server -----------------------------------------------------------------

def _libc():
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _preexec(libc):
    def run() -> None:
        """In the child, before exec: lowest priority, and SIGTERM when the server dies
        (nothing loaded here: the parent may have threads)."""
        os.nice(19)
        if libc is not None:
            libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    return run


def _spawn(url: str, data_dir: str) -> subprocess.Popen:
    global _child
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    code = "import sys; from annotator.services.background import main; sys.exit(main(sys.argv[1:]))"
    _child = subprocess.Popen([sys.executable, "-c", code, url, data_dir], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              preexec_fn=_preexec(_libc()), close_fds=True)
    return _child


def _supervise(url: str, data_dir: str) -> None:
    """Start the background process again when it dies (killed for want of memory, say);
    its job goes back to the queue at its next start (jobs.requeue_orphans)."""
    while True:
        with _lock:
            child = _child
        if child is None:
            return
        code = child.wait()
        if _stopping.is_set():
            return
        # 0 is also what wait() answers when gunicorn's arbiter, which reaps every child of
        # the master, took the exit status first (ECHILD): then how it ended is unknown
        how = f" ({code})" if code else ""
        print(f"annotator: the background process exited{how}; starting it again in "
              f"{RESTART_S:g} s", file=sys.stderr, flush=True)
        if _stopping.wait(RESTART_S):
            return
        with _lock:
            if _stopping.is_set():
                return
            _spawn(url, data_dir)


def start(url: str, data_dir: str) -> subprocess.Popen:
    """Start the server's background process (its child: same session, dies with it), and
    a thread of the server's that starts it again if it dies."""
    _stopping.clear()
    with _lock:
        child = _spawn(url, data_dir)
    threading.Thread(target=_supervise, args=(url, data_dir), name="background-supervisor",
                     daemon=True).start()
    return child


def stop() -> None:
    """Stop the background process: its job goes back to the queue."""
    global _child
    _stopping.set()
    with _lock:
        child, _child = _child, None
    if child is None or child.poll() is not None:
        return
    child.terminate()
    try:
        child.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
