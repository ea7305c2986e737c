"""API Gateway's mapping templates, rendered offline: a Velocity engine (airspeed, the fork LocalStack runs API
Gateway's VTL with) and the few variables and Java methods the templates of api/openapi.yaml use.

Stands in for API Gateway, for tests only: ``$input`` (body, json, path, params), ``$util`` (escapeJavaScript,
parseJson), ``$context`` (requestId, responseOverride) and the Java String / Map / List methods the templates
call (length, trim, matches, replaceAll, startsWith, endsWith, containsKey, keySet, contains). Checked against AWS's
documented behaviour, not against a deployed API: see docs/api.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import airspeed
from airspeed import operators

operators.__additional_methods__[str].update({
    "trim": lambda self: self.strip(),
    "endsWith": lambda self, suffix: self.endswith(suffix),
    "isEmpty": lambda self: len(self) == 0,
})
operators.__additional_methods__[dict].update({
    "containsKey": lambda self, key: key in self,
    "size": lambda self: len(self),
})


def escape_javascript(text: Any) -> str:
    """Apache commons-lang StringEscapeUtils.escapeJavaScript, which $util.escapeJavaScript is."""
    out = []
    for char in str(text):
        code = ord(char)
        if char in "'\"\\/":
            out.append("\\" + char)
        elif char in "\b\n\t\f\r":
            out.append({"\b": "\\b", "\n": "\\n", "\t": "\\t", "\f": "\\f", "\r": "\\r"}[char])
        elif code < 32 or code > 0x7F:
            if code > 0xFFFF:  # Java strings are UTF-16: a surrogate pair, each escaped
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04X}\\u{0xDC00 + (code & 0x3FF):04X}")
            else:
                out.append(f"\\u{code:04X}")
        else:
            out.append(char)
    return "".join(out)


def _lookup(document: Any, path: str) -> Any:
    """The JSONPath forms the templates use: $ and $.a.b."""
    assert path == "$" or path.startswith("$."), path
    value = document
    for part in [p for p in path[2:].split(".") if p]:
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class _Input:
    def __init__(self, body: str, params: dict[str, str]):
        self.body = body
        self._params = {k.lower(): v for k, v in params.items()}

    def _document(self) -> Any:
        return json.loads(self.body)

    def json(self, path: str) -> str:
        return json.dumps(_lookup(self._document(), path), ensure_ascii=False)

    def path(self, path: str) -> Any:
        return _lookup(self._document(), path)

    def params(self, name: str) -> str:
        return self._params.get(name.lower(), "")


class _Util:
    def escapeJavaScript(self, text: Any) -> str:
        return escape_javascript(text)

    def parseJson(self, text: str) -> Any:
        return json.loads(text)


@dataclass
class Rendered:
    text: str
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.text)


def render(template: str, *, body: str = "", params: dict[str, str] | None = None, request_id: str = "req-1",
           substitutions: dict[str, str] | None = None) -> Rendered:
    """Render one mapping template: ``body`` is what $input reads (the client's body in a request template, the
    integration's answer in a response template); ``substitutions`` fill the template's Fn::Sub placeholders."""
    for placeholder, value in (substitutions or {}).items():
        template = template.replace("${" + placeholder + "}", value)
    assert "${" not in template, re.findall(r"\$\{[^}]*\}", template)
    context: dict[str, Any] = {"requestId": request_id, "responseOverride": {"header": {}}}
    text = airspeed.Template(template).merge({"input": _Input(body, params or {}), "util": _Util(),
                                              "context": context})
    override = context["responseOverride"]
    status = override.get("status")
    return Rendered(text, int(status) if status is not None else None, dict(override["header"]))
