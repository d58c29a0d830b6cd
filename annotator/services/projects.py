"""Projects and their label sets."""

from __future__ import annotations

import re

from sqlmodel import Session, select

from annotator.core.bodies import check_object, name_problem
from annotator.core.errors import Conflict, Invalid, NotFound
from annotator.core.numbers import in_range, whole
from annotator.core.spans import KINDS, LabelSpec
from annotator.services.members import add_member
from annotator.storage.models import Label, Project, User

STANCE = {"values": ["favor", "against", "neutral"], "required": True}

LABEL_SETS: dict[str, list[dict]] = {
    "news": [
        {"name": "PERSON", "color": "#f4a261", "hotkey": "1", "kind": "entity"},
        {"name": "ORG", "color": "#2a9d8f", "hotkey": "2", "kind": "entity"},
        {"name": "MONEY", "color": "#e9c46a", "hotkey": "3", "kind": "entity"},
        {"name": "CLAIM", "color": "#7b2cbf", "hotkey": "4", "kind": "span",
         "attributes": {"stance": STANCE}},
    ],
}
LANG_RE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?")  # these three: fullmatch ("$" takes a final "\n")
COLOR_RE = re.compile(r"#[0-9a-fA-F]{6}")
LABEL_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


ATTRIBUTE_KEYS = {"values", "required"}


def _check_attributes(attrs, bad) -> dict:
    """``{name: {"values": [strings], "required": bool}}``; problems go to ``bad``."""
    if attrs is None:
        return {}
    if not isinstance(attrs, dict):
        bad("attributes", 'attributes must map a name to {"values": [...], "required": true|false}')
        return {}
    clean = {}
    for name, rule in attrs.items():
        fld = f"attributes.{name}"
        if not LABEL_NAME_RE.fullmatch(name):
            bad(fld, "an attribute name must be 1-64 letters, digits, '_' or '-'")
        elif not isinstance(rule, dict):
            bad(fld, f'attribute {name!r} must be {{"values": [...], "required": true|false}}')
        elif set(rule) - ATTRIBUTE_KEYS:
            unknown = sorted(set(rule) - ATTRIBUTE_KEYS)[0]
            bad(fld, f"unknown field {unknown!r} in attribute {name!r} (allowed: values, required)")
        elif not isinstance(rule.get("values", []), list) or any(
                name_problem(v, 64) for v in rule.get("values", [])):
            bad(fld, f"the values of attribute {name!r} must be a list of names of 1-64 characters "
                "(no control character, no space at either end)")
        elif not isinstance(rule.get("required", False), bool):
            bad(fld, f"'required' of attribute {name!r} must be true or false")
        else:
            clean[name] = rule
    return clean


def check_label_set(labels, *, with_ids: bool = False) -> list[dict]:
    """Validate a label-set definition (from JSON, the CLI or the UI); all errors at once.
    ``with_ids``: an edit, where a label may carry the ``id`` of the label it changes."""
    if not isinstance(labels, list) or not labels:
        raise Invalid("A label set must be a non-empty list of labels.", [{"field": "labels"}])
    errors, clean, names, keys = [], [], set(), set()
    allowed = {"name", "color", "hotkey", "kind", "attributes"} | ({"id"} if with_ids else set())
    for i, lab in enumerate(labels):
        def bad(field, reason):
            errors.append({"label": i, "field": field, "reason": reason})
        if not isinstance(lab, dict):
            bad("label", "a label must be an object")
            continue
        for extra in sorted(set(lab) - allowed):
            bad(extra, f"unknown field {extra!r}")
        name = lab.get("name")
        if not isinstance(name, str) or not LABEL_NAME_RE.fullmatch(name):
            bad("name", "name must be 1-64 letters, digits, '_' or '-'")
        elif name in names:
            bad("name", f"duplicate label {name!r}")
        if isinstance(name, str):
            names.add(name)
        kind = lab.get("kind", "entity")
        if kind not in KINDS:
            bad("kind", f"kind must be one of {', '.join(KINDS)}")
        color = lab.get("color", "#888888")
        if not isinstance(color, str) or not COLOR_RE.fullmatch(color):
            bad("color", "color must look like #1a2b3c")
        hotkey = lab.get("hotkey")
        if hotkey is not None:
            if not isinstance(hotkey, str) or len(hotkey) != 1 or hotkey in "fansFANS?" \
                    or name_problem(hotkey):
                bad("hotkey", "hotkey must be one character, not f/a/n/s/? (used by the page)")
            elif hotkey in keys:
                bad("hotkey", f"hotkey {hotkey!r} is used twice")
            keys.add(hotkey)
        attrs = _check_attributes(lab.get("attributes", {}), bad)
        entry = {"name": name, "color": color, "hotkey": hotkey, "kind": kind,
                 "attributes": attrs, "position": i}
        if "id" in lab:
            if not isinstance(lab["id"], int) or isinstance(lab["id"], bool) or not in_range(lab["id"]):
                bad("id", "id must be the number of a label of this project")
            entry["id"] = lab["id"]
        clean.append(entry)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Invalid(f"The label set is invalid: label {errors[0]['label']} "
                      f"({errors[0]['field']}): {errors[0]['reason']}{more}.", errors)
    return clean


# POST /api/v1/projects: field -> JSON types (bodies.check_object)
PROJECT_FIELDS = {"name": (str,), "language": (str,), "guidelines": (str,), "k": (int,),
                  "labels": (list,), "label_set": (str,)}


def project_from_body(s: Session, body, creator: User | None = None) -> Project:
    """Create a project from an API body: ``labels`` (a label set) or ``label_set`` (a name)."""
    check_object(body, PROJECT_FIELDS, required=("name",))
    if "labels" in body and "label_set" in body:
        raise Invalid("Send either 'labels' (a label set) or 'label_set' (its name), not both.",
                      [{"field": "labels", "reason": "both labels and label_set"}])
    return create_project(s, body["name"], language=body.get("language", "en"),
                          guidelines=body.get("guidelines", ""), k=body.get("k", 2),
                          label_set=body["labels"] if "labels" in body
                          else body.get("label_set", "news"), creator=creator)


def _check_name(name) -> str:
    name = name.strip() if isinstance(name, str) else ""
    problem = name_problem(name, 200)
    if problem:
        raise Invalid(f"A project needs a name of 1-200 characters: the name {problem}.",
                      [{"field": "name", "reason": problem}])
    return name


def _check_language(language) -> str:
    if not isinstance(language, str) or not LANG_RE.fullmatch(language):
        raise Invalid(f"Language {language!r} is not a language code such as 'ko' or 'en'.",
                      [{"field": "language"}])
    return language


def create_project(s: Session, name: str, *, language: str = "en", guidelines: str = "", k: int = 2,
                   label_set: str | list = "news", creator: User | None = None) -> Project:
    """A new project with its labels; ``creator`` (a lead or admin) becomes its first member."""
    name = _check_name(name)
    _check_language(language)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 50:
        raise Invalid(f"Field 'k' (annotators per document) must be a whole number from 1 to 50, "
                      f"not {k!r}.", [{"field": "k", "reason": "out of range"}])
    if not isinstance(guidelines, str):
        raise Invalid("guidelines must be text (Markdown).", [{"field": "guidelines"}])
    if isinstance(label_set, str):
        if label_set not in LABEL_SETS:
            raise Invalid(f"Unknown label set {label_set!r}; known: {', '.join(LABEL_SETS)}.",
                          [{"field": "label_set"}])
        label_set = LABEL_SETS[label_set]
    labels = check_label_set(label_set)
    if s.exec(select(Project).where(Project.name == name)).first() is not None:
        raise Conflict(f"A project named {name!r} already exists.", [{"field": "name"}])
    project = Project(name=name, language=language, guidelines=guidelines, k=k)
    s.add(project)
    s.flush()
    for lab in labels:
        s.add(Label(project_id=project.id, **lab))
    s.flush()
    if creator is not None:
        add_member(s, project, creator)
    return project


# PATCH /api/v1/projects/<id>: field -> JSON types (bodies.check_object)
PROJECT_EDIT_FIELDS = {"name": (str,), "language": (str,), "guidelines": (str,), "labels": (list,)}


def label_use(s: Session, label_ids) -> dict[int, int]:
    """Spans that use each label, in every saved annotation (gold and imports included)."""
    from sqlalchemy import func

    from annotator.storage.models import Span

    ids = list(label_ids)
    if not ids:
        return {}
    rows = s.execute(select(Span.label_id, func.count()).where(Span.label_id.in_(ids))
                     .group_by(Span.label_id)).all()
    return {label_id: n for label_id, n in rows}


def update_project(s: Session, project: Project, body) -> Project:
    """Change a project's name, language, guidelines and label set; all checked first.

    Labels are matched by ``id``: one without an id is new, a project label whose id is not
    sent is removed. Renaming or removing a label that spans use, or changing its kind, is
    refused with the count of those spans (they would silently change meaning); its colour,
    hotkey and attributes may change."""
    check_object(body, PROJECT_EDIT_FIELDS)
    if not body:
        raise Invalid("Send one or more of: " + ", ".join(PROJECT_EDIT_FIELDS) + ".",
                      [{"field": "body", "reason": "nothing to change"}])
    name = _check_name(body["name"]) if "name" in body else project.name
    language = _check_language(body["language"]) if "language" in body else project.language
    if name != project.name and s.exec(select(Project).where(Project.name == name)).first():
        raise Conflict(f"A project named {name!r} already exists.", [{"field": "name"}])
    plan = _label_plan(s, project, body["labels"]) if "labels" in body else None
    project.name, project.language = name, language
    if "guidelines" in body:
        project.guidelines = body["guidelines"]
    s.add(project)
    if plan is not None:
        _apply_labels(s, project, *plan)
    s.flush()
    return project


def _label_plan(s: Session, project: Project, labels) -> tuple[list[dict], list[Label]]:
    wanted = check_label_set(labels, with_ids=True)
    current = {lab.id: lab for lab in project_labels(s, project.id)}
    errors = []
    for i, lab in enumerate(wanted):
        if "id" in lab and lab["id"] not in current:
            errors.append({"label": i, "field": "id",
                           "reason": f"label id {lab['id']} is not a label of this project"})
    if errors:
        raise Invalid(f"The label set is invalid: label {errors[0]['label']} (id): "
                      f"{errors[0]['reason']}.", errors)
    kept = {lab["id"]: (i, lab) for i, lab in enumerate(wanted) if "id" in lab}
    removed = [lab for lab_id, lab in current.items() if lab_id not in kept]
    use = label_use(s, current)
    for lab in removed:
        if use.get(lab.id):
            errors.append({"field": "labels", "label_id": lab.id, "name": lab.name,
                           "spans": use[lab.id], "reason": f"{use[lab.id]} span(s) use label "
                           f"{lab.name!r}: it cannot be removed"})
    for lab_id, (i, lab) in kept.items():
        old = current[lab_id]
        for attr, verb in (("name", "renamed"), ("kind", "given another kind")):
            if lab[attr] != getattr(old, attr) and use.get(lab_id):
                errors.append({"label": i, "field": attr, "label_id": lab_id, "name": old.name,
                               "spans": use[lab_id], "reason": f"{use[lab_id]} span(s) use label "
                               f"{old.name!r}: it cannot be {verb}"})
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise Conflict(f"{errors[0]['reason'][0].upper()}{errors[0]['reason'][1:]}{more}; "
                       "delete or relabel those spans first, or add a new label.", errors)
    return wanted, removed


def _apply_labels(s: Session, project: Project, wanted: list[dict], removed: list[Label]) -> None:
    for lab in removed:
        s.delete(lab)
    current = {lab.id: lab for lab in project_labels(s, project.id)}
    s.flush()
    # two steps, so that names may be swapped without meeting the unique (project, name)
    for lab in wanted:
        if "id" in lab:
            current[lab["id"]].name = f"~renaming-{lab['id']}"
    s.flush()
    for lab in wanted:
        fields = {k: v for k, v in lab.items() if k != "id"}
        if "id" in lab:
            row = current[lab["id"]]
            for key, value in fields.items():
                setattr(row, key, value)
            s.add(row)
        else:
            s.add(Label(project_id=project.id, **fields))


def find_project(s: Session, ref: str) -> Project:
    """A project by id or by name (for the CLI)."""
    project = None
    number = whole(str(ref))
    if number is not None:
        project = s.get(Project, number)
    if project is None:
        project = s.exec(select(Project).where(Project.name == ref)).first()
    if project is None:
        raise NotFound(f"No project with id or name {ref!r}.")
    return project


def project_labels(s: Session, project_id: int) -> list[Label]:
    return list(s.exec(select(Label).where(Label.project_id == project_id).order_by(Label.position)))


def label_specs(labels: list[Label]) -> dict[str, LabelSpec]:
    return {lab.name: LabelSpec(lab.name, lab.kind, lab.attributes or {}) for lab in labels}


def label_json(lab: Label) -> dict:
    return {"id": lab.id, "name": lab.name, "color": lab.color, "hotkey": lab.hotkey,
            "kind": lab.kind, "attributes": lab.attributes or {}}


def project_json(p: Project, labels: list[Label] | None = None) -> dict:
    out = {"id": p.id, "name": p.name, "language": p.language, "k": p.k, "blind": p.blind,
           "created_at": p.created_at.isoformat()}
    if labels is not None:
        out["labels"] = [label_json(lab) for lab in labels]
    return out
