"""The model lifecycle over HTTP: push a version (multipart: `model`, `schema`, optional
`thresholds`, `metadata`, `profile`, `labels`, `force`), list and read versions, activate,
roll back, delete, and set or clear a shadow. Every change is audited and NOTIFYed by the
registry."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ferroscore._core import ModelLoadError, SchemaError
from ferroscore.models.registry import ModelRegistry, RegistryError, check_name
from ferroscore.pipeline import (
    Call,
    Handler,
    Reply,
    digits,
    error_reply,
    json_reply,
    pointer,
    pointer_error,
)
from ferroscore.serving.forms import FormError, name_files, parse_form
from ferroscore.serving.service import Service

#: The form fields a push reads; any other is refused, so a typo is not silently dropped.
FIELDS = ("model", "schema", "thresholds", "metadata", "profile", "labels", "force")
_FORCE = {b"true": True, b"1": True, b"false": False, b"0": False, b"": False}


def _actor(call: Call) -> str:
    """Who changed a model, for its audit trail: the key's id, else the peer address."""
    caller = call.caller.key_id if call.caller is not None else "anonymous"
    if caller == "anonymous":
        return str((call.state or {}).get("peer") or caller)
    return caller


def _models(service: Service, call: Call) -> ModelRegistry:
    """The registry as the caller's tenant sees it."""
    return service.registry.scoped(call.tenant)


def _version_param(call: Call) -> int:
    raw = call.params["version"]
    if not digits(raw) or int(raw) < 1 or int(raw) > 2**31 - 1:
        raise RegistryError(400, "invalid_version", f"version {raw!r} is not a positive integer")
    return int(raw)


def _route(fn: Callable[[Service, Call], Reply]) -> Callable[[Service], Handler]:
    """A lifecycle route bound to its service, with the registry's refusals as their replies."""

    def bind(service: Service) -> Handler:
        def handle(call: Call) -> Reply:
            try:
                return fn(service, call)
            except RegistryError as e:
                return error_reply(e.status, e.code, e.message)

        return handle

    bind.__doc__ = fn.__doc__
    return bind


def _form(call: Call) -> Mapping[str, bytes]:
    if call.form is not None:
        return name_files(dict(call.form), call.form_files)
    return parse_form(call.header("content-type"), call.body_bytes())


def _json_field(form: Mapping[str, bytes], name: str, kind: type) -> Any:
    raw = form.get(name)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise RegistryError(
            400, "malformed_json", f"form field {name!r} is not JSON: {e}"
        ) from None
    if not isinstance(value, kind):
        raise RegistryError(
            422, "invalid_field", f"form field {name!r} must be a JSON {kind.__name__}"
        )
    return value


@_route
def push(service: Service, call: Call) -> Reply:
    name = call.params["name"]
    check_name(name)
    limit = service.settings.max_artifact_bytes
    declared = call.header("content-length")
    size = int(declared) if digits(declared) else len(call.body)
    if size > limit:
        return error_reply(
            413,
            "payload_too_large",
            f"the upload is {size} bytes; the limit (FERROSCORE_MAX_ARTIFACT_BYTES) is {limit}",
        )
    try:
        form = _form(call)
    except FormError as e:
        return error_reply(400, "malformed_form", str(e))
    unknown = sorted(set(form) - set(FIELDS))
    if unknown:
        message = f"unknown form field {unknown[0]!r}; the fields are {', '.join(FIELDS)}"
        return pointer_error(422, "unknown_field", message, pointer(unknown[0]))
    for required in ("model", "schema"):
        if not form.get(required):
            return pointer_error(
                422, "missing", f"the form field {required!r} is required", pointer(required)
            )
    try:
        schema = form["schema"].decode()
    except UnicodeDecodeError:
        return pointer_error(400, "malformed_json", "the schema is not UTF-8 text", "/schema")
    thresholds = _json_field(form, "thresholds", list)
    metadata = _json_field(form, "metadata", dict)
    profile = _json_field(form, "profile", dict)
    labels = _labels(form.get("labels"))
    if isinstance(labels, Reply):
        return labels
    force = _FORCE.get(form.get("force", b"").strip().lower())
    if force is None:
        return pointer_error(422, "invalid_field", "the form field 'force' is true or false",
                             "/force")  # fmt: skip
    try:
        created = _models(service, call).register(
            name,
            form["model"],
            schema,
            thresholds=orjson.dumps(thresholds).decode() if thresholds is not None else None,
            metadata=metadata,
            profile=profile,
            labels=labels,
            actor=_actor(call),
            force=force,
        )
    except ModelLoadError as e:
        return _refused_model(e)
    except SchemaError as e:
        document = getattr(e, "document", "schema")
        # The core's pointer into the document is escaped already.
        where = f"/{document}{getattr(e, 'pointer', '')}"
        code = {"thresholds": "invalid_thresholds", "labels": "invalid_labels"}.get(
            document, "schema_mismatch"
        )
        return pointer_error(422, code, getattr(e, "message", str(e)), where)
    # The same artifact, schema and thresholds again: that version, nothing stored.
    return json_reply(200 if created["existing"] else 201, created)


def _labels(raw: bytes | None) -> list[str] | Reply | None:
    """The form's class labels: a JSON list of non-empty strings, else 422 at `/labels`."""
    if raw is None:
        return None
    try:
        labels = orjson.loads(raw)
    except orjson.JSONDecodeError:
        labels = None
    if isinstance(labels, list) and labels and all(isinstance(x, str) and x for x in labels):
        return labels
    return pointer_error(422, "invalid_field", "the form field 'labels' is a JSON list of "
                         "non-empty strings, one per class", "/labels")  # fmt: skip


def _refused_model(e: ModelLoadError) -> Reply:
    """422 for an artifact that cannot be served: `model_too_large` naming the file's field
    and the setting that bounds it, else `model_not_loadable`."""
    field, limit = getattr(e, "field", None), getattr(e, "limit", None)
    if limit is None:
        return pointer_error(422, "model_not_loadable", str(e), "/model")
    setting = "FERROSCORE_MODEL_MAX_" + ("MEMORY_MB" if limit == "memory_bytes" else limit.upper())
    message = f"{e} ({setting})"
    error = {"pointer": "/model", "code": "model_too_large", "message": message,
             "field": str(field), "setting": setting}  # fmt: skip
    return error_reply(422, "model_too_large", message, [error])


@_route
def list_versions(service: Service, call: Call) -> Reply:
    return json_reply(200, {"versions": _models(service, call).versions(call.params["name"])})


@_route
def get_version(service: Service, call: Call) -> Reply:
    found = _models(service, call).version(call.params["name"], _version_param(call))
    return json_reply(200, found)


@_route
def activate(service: Service, call: Call) -> Reply:
    version = _version_param(call)
    status = _models(service, call).activate(call.params["name"], version, _actor(call))
    return json_reply(200, status)


@_route
def rollback(service: Service, call: Call) -> Reply:
    return json_reply(200, _models(service, call).rollback(call.params["name"], _actor(call)))


@_route
def delete_version(service: Service, call: Call) -> Reply:
    _models(service, call).delete(call.params["name"], _version_param(call), _actor(call))
    return Reply(204, b"", {})


@_route
def put_shadow(service: Service, call: Call) -> Reply:
    try:
        body = orjson.loads(call.body_bytes())
    except orjson.JSONDecodeError as e:
        return error_reply(400, "malformed_json", f"the body is not JSON: {e}")
    if not isinstance(body, dict):
        return pointer_error(422, "type", 'expected {"version": v, "share": s}', "")
    version, share = body.get("version"), body.get("share")
    if isinstance(version, float) and version.is_integer():
        # JSON has numbers, not integers: 2.0 is the integer 2 (as JSON Schema reads it).
        version = int(version)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version < 2**31:
        return pointer_error(422, "type", "version must be a positive integer", "/version")
    if not isinstance(share, int | float) or isinstance(share, bool):
        return pointer_error(422, "type", "share must be a number from 0 to 1", "/share")
    if not math.isfinite(share) or not 0 <= share <= 1:
        return pointer_error(422, "maximum", "share must be a number from 0 to 1", "/share")
    if extra := sorted(set(body) - {"version", "share"}):
        return pointer_error(422, "unknown_field", f"unknown field {extra[0]!r}", pointer(extra[0]))
    name, actor = call.params["name"], _actor(call)
    status = _models(service, call).set_shadow(name, version, float(share), actor)
    return json_reply(200, status)


@_route
def delete_shadow(service: Service, call: Call) -> Reply:
    return json_reply(200, _models(service, call).clear_shadow(call.params["name"], _actor(call)))


@_route
def audit(service: Service, call: Call) -> Reply:
    rows = _models(service, call).audit(call.params["name"])
    for r in rows:
        r["at"] = r["at"].isoformat()
    return json_reply(200, {"audit": rows})


@_route
def registry(service: Service, call: Call) -> Reply:
    return json_reply(200, {"models": _models(service, call).models()})
