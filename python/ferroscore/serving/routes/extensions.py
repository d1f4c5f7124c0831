"""The route hooks of the hooks module (`@route`), as rows of the route table: each runs
through the pipeline like any other route and answers within its time budget."""

from __future__ import annotations

import uuid
from typing import Any

from ferroscore.hooks import Hook, HookRefusal, reply_of
from ferroscore.pipeline import Call, Handler, Reply, Route, error_reply
from ferroscore.serving.service import Service


def routes(service: Service) -> list[Route]:
    table = []
    for hook in service.hooks.routes:
        method, _, path = hook.target.partition(" ")
        summary = (hook.fn.__doc__ or hook.name).strip().splitlines()[0]
        responses = {200: "the hook's answer", 500: "the hook failed", 503: "past its budget"}
        # Reading needs the `read` scope; anything else may change something: `admin`.
        scope = "read" if method == "GET" else "admin"
        table.append(
            Route(method, path, _handler(service, hook), summary, scope=scope, responses=responses)
        )
    return table


def _handler(service: Service, hook: Hook[Any]) -> Handler:
    def handle(call: Call) -> Reply:
        ctx = service.hook_context(str(uuid.uuid4()), caller=call.caller)
        try:
            return reply_of(service.hook_runner.run(hook, call, ctx))
        except HookRefusal as e:
            return e.reply()
        except TypeError as e:
            message = f"{hook.name} returned what JSON cannot hold: {e}"
            return error_reply(500, "hook_failed", message)

    return handle
