"""Test tooling for the REST API without a switch: a stand-in for the os-ken app (it records the
effects it is handed) and a WSGI call that returns the status and the decoded body."""

from __future__ import annotations

import io
import json

from lisp_app.dataplane.effects import FlowChange
from tests.xtrkit import CONFIG, make_xtr


class FakeApp:
    """What lisp_app.api.server needs of the os-ken app: an Xtr, the connected bridges, and
    ``execute`` / ``execute_bulk``, which record their effects (``effects``, ``bulk``)."""

    def __init__(self, config: str = CONFIG):
        self.xtr = make_xtr(config)
        self.datapaths = {}
        self.effects, self.bulk = [], []

    def execute(self, effects):
        self.effects.extend(effects)

    def execute_bulk(self, effects):
        effects = list(effects)  # (the API hands over a generator, as the app takes it)
        self.bulk.append(effects)
        flows = sum(len(e.add) for e in effects if isinstance(e, FlowChange))
        return {"flows": flows, "groups": 0, "bundles": 1}

    def flow_rows(self, bridge):
        return []

    def group_rows(self, bridge):
        return []


def call(api, method, path, body=None, **environ):
    """(status code, decoded JSON body; the text for /metrics) of one request."""
    path, _, query = path.partition("?")
    raw = json.dumps(body).encode() if body is not None else b""
    env = {"REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
           "CONTENT_LENGTH": str(len(raw)), "wsgi.input": io.BytesIO(raw),
           "HTTP_HOST": "127.0.0.1:8080", "CONTENT_TYPE": "application/json", **environ}
    status = []
    out = b"".join(api(env, lambda s, headers: status.append(s)))
    text = out.decode()
    return int(status[0].split()[0]), (text if path == "/metrics" else json.loads(text))
