"""A project's models: training one and predicting with it, as jobs (jobs.py) run by the
server's background process or in the foreground by ``annotator train``. The database side
of training.py, which does the learning and knows spaCy; neither is ever imported by the web
process.

What a model learns from, per document: its gold (settled by a lead), else the majority of its
submitted annotations, else the spans it was imported with. Each trained version is kept in
``DATA_DIR/models/project-P/vN`` with its held-out scores and learning curve; the first one
becomes the project's ``model`` setting (the version that suggests), later ones wait for the
lead to choose them. Its predictions on every document of the project are computed by a
``predict`` job and stored (models.Prediction), so that opening a document never waits.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sqlalchemy import DateTime, delete, func, select

from annotator.core.errors import NotFound
from annotator.storage.fastsql import Statement, connection_of
from annotator.storage.models import Document, ModelVersion, Prediction, Project

PREDICT_BATCH = 8  # documents per stored batch
TRAINED_ON = "trained_on"  # in a version's scores: the ids of the documents it learned from


def models_dir(data_dir: str, project_id: int) -> Path:
    return Path(data_dir).absolute() / "models" / f"project-{project_id}"


def training_records(s, project: Project) -> tuple[list[dict], dict]:
    """Per document: gold, else majority, else imported spans (the export's ``best`` source).
    Returns the submitted records and how many documents came from each source."""
    from annotator.services.export_records import iter_records

    records = [rec for rec in iter_records(s, project, "best")
               if rec.get("status", "submitted") == "submitted"]
    counts = {source: sum(rec["source"] == source for rec in records)
              for source in ("gold", "majority", "import")}
    return records, counts


def _project(s, project_id: int) -> Project:
    project = s.get(Project, project_id)
    if project is None:
        raise NotFound(f"Project {project_id} no longer exists.")
    return project


def run_train(run, url: str, data_dir: str) -> dict:
    """A ``train`` job: train the next version of the job's project (training.py)."""
    from annotator.services import training
    from annotator.services.export_records import export_labels, export_words
    from annotator.storage.db import Database
    from annotator.storage.jobs import enqueue

    db = Database(url)
    try:
        with db.session(write=False) as s:
            project = _project(s, run.job.project_id)
            records, counts = training_records(s, project)
            labels, words, lang = export_labels(s, project), export_words(project), project.language
            number = (s.execute(select(func.max(ModelVersion.number))
                                .where(ModelVersion.project_id == project.id)).scalar() or 0) + 1
        run.progress(0.01, f"training version {number} on {len(records)} documents "
                           f"({', '.join(f'{k} {v}' for k, v in counts.items() if v)})")
        out = models_dir(data_dir, project.id) / f"v{number}"
        if out.exists():  # left by a run whose version was never recorded: nobody's
            shutil.rmtree(out)
        scores = training.train(records, labels, lang or "en", words, out, seed=0, pace=run.pace,
                                progress=lambda f, m=None: run.progress(0.02 + 0.96 * f, m))
        source = max(counts, key=lambda k: counts[k])
        with db.session() as s:
            project = _project(s, project.id)
            version = ModelVersion(project_id=project.id, number=number, source=source,
                                   scores={**scores, "documents": counts,
                                           TRAINED_ON: [r["document"]["id"] for r in records]},
                                   path=str(out), job_id=run.job.id)
            s.add(version)
            s.flush()
            settings = dict(project.settings or {})
            active = settings.get("model") is None
            if active:  # the first model suggests at once; later ones wait for the lead
                settings["model"] = number
                project.settings = settings
                s.add(project)
                enqueue(s, "predict", project.id, {"version": number})
            s.commit()
        return {"version": number, "active": active, "documents": counts,
                "overall": scores.get("overall"), "seconds": scores.get("seconds")}
    finally:
        db.dispose()


def run_predict(run, url: str, data_dir: str) -> dict:
    """A ``predict`` job: store a version's predictions on every document of its project that
    has none yet (resumable: a stopped job goes on where it was)."""
    from annotator.services import training
    from annotator.services.export_records import export_labels
    from annotator.storage.db import Database

    db = Database(url)
    try:
        number = int(run.params["version"])
        with db.session(write=False) as s:
            project = _project(s, run.job.project_id)
            version = s.execute(select(ModelVersion).where(
                ModelVersion.project_id == project.id, ModelVersion.number == number)).scalar_one_or_none()
            if version is None:
                raise NotFound(f"Project {project.id} has no model version {number}.")
            labels = export_labels(s, project)
            missing = select(Document.id).where(
                Document.project_id == project.id,
                ~select(Prediction.id).where(Prediction.model_version_id == version.id,
                                             Prediction.document_id == Document.id).exists())
            todo = [d for (d,) in s.execute(missing.order_by(Document.id))]
        run.progress(0.0, f"loading version {number}")
        nlp = training.load(Path(version.path) / "model")
        offered = offered_labels(version.scores or {})
        done = 0
        for i in range(0, len(todo), PREDICT_BATCH):
            ids = todo[i:i + PREDICT_BATCH]
            with db.session(write=False) as s:
                docs = s.execute(select(Document.id, Document.text, Document.tokens)
                                 .where(Document.id.in_(ids)).order_by(Document.id)).all()
            run.pace()
            found = training.predict(nlp, [d.text for d in docs], labels,
                                     tokens=[d.tokens for d in docs])
            for got in found:  # all kept (the report scores them); only these are suggested
                for sp in got["spans"]:
                    sp["offered"] = sp["label"] in offered
            with db.session() as s:
                for d, got in zip(docs, found):
                    s.execute(delete(Prediction).where(Prediction.model_version_id == version.id,
                                                       Prediction.document_id == d.id))
                    s.add(Prediction(model_version_id=version.id, document_id=d.id,
                                     spans=got["spans"], uncertainty=got["uncertainty"]))
                s.commit()
            done += len(docs)
            run.progress(done / len(todo), f"version {number}: {done:,} of {len(todo):,} documents predicted")
        return {"version": number, "documents": done}
    finally:
        db.dispose()


# --- which labels a version may suggest ----------------------------------------------------------

MIN_PRECISION, MIN_PREDICTED = 0.8, 5


def offered_labels(scores: dict) -> set[str]:
    """The labels whose held-out precision is at least ``MIN_PRECISION`` over at least
    ``MIN_PREDICTED`` predictions: only those are offered as suggestions (as INCEpTION
    activates a recommender only above a score threshold). A model that learned a label
    badly would cost the annotators more rejections than it saves them drawing."""
    return {label for label, sc in (scores.get("labels") or {}).items()
            if sc.get("p", 0) >= MIN_PRECISION and sc.get("predicted", 0) >= MIN_PREDICTED}


# --- what the lead sees and chooses ------------------------------------------------------------

# What annotators did with a version's suggestions (core/live.py): accepted as they were or
# edited (the span's provenance, in submitted annotations) and rejected, with when.
_REVIEWED_SPANS = Statement(
    "SELECT a.submitted_at, l.name, s.edited, a.document_id FROM spans s "
    "JOIN annotations a ON a.id = s.annotation_id JOIN documents d ON d.id = a.document_id "
    "JOIN labels l ON l.id = s.label_id WHERE d.project_id = :p AND a.status = 'submitted' "
    "AND s.origin = 'model' AND s.origin_version = :v", results={0: DateTime(timezone=True)})
_REVIEWED_REJECTIONS = Statement(
    "SELECT r.created_at, r.label, r.document_id FROM suggestion_rejections r "
    "JOIN documents d ON d.id = r.document_id WHERE d.project_id = :p "
    "AND r.source = 'model' AND r.version = :v", results={0: DateTime(timezone=True)})


def live_of(source, project_id: int, number: int, scores: dict) -> dict[str, dict]:
    """Live precision per label of version ``number`` (core.live.live_labels), counted on the
    documents it never learned from. ``source``: a Session or a connection."""
    from annotator.core.live import ACCEPTED, EDITED, REJECTED, live_labels

    conn = connection_of(source)
    trained = set(scores.get(TRAINED_ON) or ())
    params = {"p": project_id, "v": f"v{number}"}
    events = [(when, label, EDITED if edited else ACCEPTED)
              for when, label, edited, doc in _REVIEWED_SPANS.all(conn, params) if doc not in trained]
    events += [(when, label, REJECTED)
               for when, label, doc in _REVIEWED_REJECTIONS.all(conn, params) if doc not in trained]
    return live_labels(events, offered_labels(scores), set(scores.get("labels") or {}))


def versions(s, project: Project) -> list[dict]:
    active = (project.settings or {}).get("model")
    rows = s.execute(select(ModelVersion).where(ModelVersion.project_id == project.id)
                     .order_by(ModelVersion.number)).scalars()
    out = []
    for v in rows:
        predicted = s.execute(select(func.count()).select_from(Prediction)
                              .where(Prediction.model_version_id == v.id)).scalar_one()
        scores = {k: x for k, x in (v.scores or {}).items() if k != TRAINED_ON}
        live = live_of(s, project.id, v.number, v.scores or {})
        out.append({"number": v.number, "active": v.number == active, "source": v.source,
                    "created_at": v.created_at.isoformat(), "scores": scores,
                    "trained_documents": len((v.scores or {}).get(TRAINED_ON) or ()),
                    "offered_labels": sorted(label for label, x in live.items() if x["active"]),
                    "held_out_labels": sorted(offered_labels(scores)),
                    "live": live, "predicted_documents": predicted})
    return out


def choose_version(s, project: Project, number: int | None, user_id: int | None = None) -> dict:
    """Make version ``number`` the one that suggests (None: no model suggests); its
    predictions are queued for the documents that have none."""
    from annotator.storage.jobs import enqueue

    if number is not None:
        found = s.execute(select(ModelVersion.id).where(
            ModelVersion.project_id == project.id, ModelVersion.number == number)).first()
        if found is None:
            have = [v["number"] for v in versions(s, project)]
            raise NotFound(f"Project {project.id} has no model version {number}"
                           + (f" (it has {', '.join(map(str, have))})." if have else
                              ": no model has been trained yet (annotator train)."))
    settings = dict(project.settings or {})
    settings["model"] = number
    project.settings = settings
    s.add(project)
    if number is not None:
        enqueue(s, "predict", project.id, {"version": number}, user_id)
    s.flush()
    return {"model": number}


def pseudo_annotations(s, project: Project, number: int) -> tuple[str, dict[int, list[dict]], int]:
    """A version's stored predictions as a read-only pseudo-annotator for the agreement
    report: (its name, {document id: spans}, how many documents were left out because the
    version learned from them: scoring a model on its training data flatters it)."""
    version = s.execute(select(ModelVersion).where(
        ModelVersion.project_id == project.id, ModelVersion.number == number)).scalar_one_or_none()
    if version is None:
        raise NotFound(f"Project {project.id} has no model version {number}.")
    trained = set((version.scores or {}).get(TRAINED_ON) or ())
    out, left_out = {}, 0
    for doc_id, spans in s.execute(select(Prediction.document_id, Prediction.spans)
                                   .where(Prediction.model_version_id == version.id)):
        if doc_id in trained:
            left_out += 1
            continue
        out[doc_id] = [{"start": x["start"], "end": x["end"], "label": x["label"],  # all of them
                        "attributes": dict(x.get("attributes") or {})} for x in spans]
    return f"model v{number}", out, left_out
