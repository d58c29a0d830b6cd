"""Run the app on gunicorn (a production WSGI server), several worker processes, one database."""

from __future__ import annotations


def run(host: str, port: int, workers: int, overrides: dict | None = None) -> None:
    from gunicorn.app.base import BaseApplication

    from . import create_app

    class _Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("accesslog", "-")
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("preload_app", True)  # import once in the master; workers share the pages
            if "control_socket_disable" in self.cfg.settings:
                # gunicorn >= 27 would put one control socket per user in ~/.gunicorn, which
                # several servers on one machine would fight over; we do not use it.
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return create_app(overrides)

    from .backup import serving
    from .config import load_config

    # Held for as long as the server (master and workers) runs: `annotator restore` checks it.
    with serving(load_config(overrides)["DATABASE_URL"]):
        _Server().run()
