"""The web app: ``create_app`` assembles the pages, the JSON API and their guards."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

PACKAGE_DIR = Path(__file__).parent.parent


def _asset_dir(name: str) -> str:
    """static/ and templates/ live at the repo top level; a wheel ships them inside the package."""
    bundled = PACKAGE_DIR / name
    return str(bundled if bundled.is_dir() else PACKAGE_DIR.parent / name)


def create_app(overrides: dict | None = None) -> Flask:
    from annotator.core.config import load_config
    from annotator.web.errors import App
    from annotator.web.request import Request

    app = App("annotator", static_folder=_asset_dir("static"), template_folder=_asset_dir("templates"))
    app.request_class = Request
    from annotator.web.jsonout import FiniteJSON

    app.json = FiniteJSON(app)
    app.config.update(load_config(overrides))
    if app.config["BEHIND_PROXY"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1)

    from annotator.web import auth, db, errors, security, ui, ui_annotate
    from annotator.web.api import bp as api_bp
    from annotator.web.api_export import bp as api_export_bp
    from annotator.web.api_members import bp as api_members_bp
    from annotator.web.api_teams import bp as api_teams_bp
    from annotator.web.api_users import bp as api_users_bp
    from annotator.web.ui_lead import bp as ui_lead_bp
    from annotator.web.ui_people import bp as ui_people_bp
    from annotator.web.ui_teams import bp as ui_teams_bp

    app.url_map.converters["int"] = db.id_converter(app.config["DATABASE_URL"])
    db.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    app.register_blueprint(ui.bp)
    app.register_blueprint(ui_lead_bp)
    app.register_blueprint(ui_annotate.bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(api_export_bp)
    app.register_blueprint(api_teams_bp)
    app.register_blueprint(api_members_bp)
    app.register_blueprint(ui_teams_bp)
    app.register_blueprint(api_users_bp)
    app.register_blueprint(ui_people_bp)
    return app
