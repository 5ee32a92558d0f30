"""Import vcrpy / pytest-recording cassettes holding ``/v1/responses`` traffic (and, through
:func:`import_recording`, WebSocket frame logs too).

Teams migrating keep their recordings and gain WebSocket replay: each ``POST
/responses`` interaction becomes a turn (SSE bodies are split into events, JSON
bodies are kept as the answer), loaded with vcrpy's own deserializer. vcrpy stores no
per-event timing, so imported events all sit at offset 0. Other interactions (file
uploads, vector stores) are not Responses turns and are left out, and counted.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._version import __version__
from ..core.jsontext import parse_json
from ..core.record import kept_response_headers, terminal_outcome
from ..errors import CassetteFormatError
from .frame_log import import_frame_log, is_frame_log
from .model import Cassette, ConnectionRecord, RecordedEvent, RecordedWith, Turn
from .redact import Redactor, redact_request


@dataclass(frozen=True)
class ImportResult:
    """An imported cassette and what was left out of it."""

    cassette: Cassette
    skipped: tuple[str, ...]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return "" if value is None else str(value)


def _fold_parsed_bodies(data: dict[str, Any]) -> dict[str, Any]:
    # Some projects serialize JSON bodies as a decoded ``parsed_body`` mapping instead of
    # vcrpy's ``body`` string; turn them back into bodies vcrpy's loader understands.
    for interaction in data.get("interactions") or []:
        for side in ("request", "response"):
            part = interaction.get(side) or {}
            if "parsed_body" in part:
                body = json.dumps(part.pop("parsed_body"))
                part["body"] = body if side == "request" else {"string": body}
    return data


def _check_interactions(path: Path, interactions: Any) -> None:
    """The shape vcrpy's loader expects: a list of request/response mappings."""
    if not isinstance(interactions, list):
        raise CassetteFormatError(path, "/interactions", "expected a list of interactions")
    for position, interaction in enumerate(interactions):
        pointer = f"/interactions/{position}"
        if not isinstance(interaction, dict):
            raise CassetteFormatError(path, pointer, "expected a mapping with a request and a response")
        for side in ("request", "response"):
            if not isinstance(interaction.get(side), dict):
                raise CassetteFormatError(path, f"{pointer}/{side}", "expected a mapping")


def parse_sse(text: str) -> list[dict[str, Any]]:
    """The JSON ``data`` of each event in an SSE body."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if lines and lines != ["[DONE]"]:
            data = parse_json("\n".join(lines))
            if isinstance(data, dict):
                events.append(data)
    return events


def _request_headers(request: Any) -> dict[str, str]:
    return {k: ", ".join(v) if isinstance(v, list) else str(v) for k, v in request.headers.items()}


def _header(headers: dict[str, Any], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return _text(value[0] if isinstance(value, list) and value else value)
    return ""


def _kept_headers(redactor: Redactor, status: int, headers: dict[str, Any]) -> dict[str, str]:
    """The headers an error answer replays with (the recorder's allow-list), scrubbed."""
    flat = {str(name): _header(headers, str(name).lower()) for name in headers}
    return {name: redactor.scrub_loose(value) for name, value in kept_response_headers(status, flat).items()}


def import_recording(path: Path) -> ImportResult:
    """Read a recording made by another tool and convert it, whichever it is, told by its content.

    A vcrpy / pytest-recording cassette (``interactions`` of request and response) or a
    WebSocket frame log (``interactions`` of ``direction`` and ``data``, as pydantic-ai
    writes them: see :mod:`.frame_log`).
    """
    data = _load_yaml(path)
    if is_frame_log(data):
        cassette, skipped = import_frame_log(path, data)
        return ImportResult(cassette, skipped)
    return _import_vcr_data(path, data)


def import_vcr_cassette(path: Path) -> ImportResult:
    """Read a vcrpy YAML cassette and convert its Responses interactions to turns."""
    return _import_vcr_data(path, _load_yaml(path))


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = (
            f"{exc.problem} (line {mark.line + 1}, column {mark.column + 1})"
            if isinstance(exc, yaml.MarkedYAMLError) and mark is not None
            else " ".join(str(exc).split())  # one line, whatever the error
        )
        raise CassetteFormatError(path, "", f"not a readable YAML cassette: {problem}") from None
    return data


def _import_vcr_data(path: Path, data: Any) -> ImportResult:
    import yaml
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    if not isinstance(data, dict) or "interactions" not in data:
        raise CassetteFormatError(path, "/interactions", "not a vcrpy cassette (no interactions)")
    _check_interactions(path, data["interactions"])
    try:
        requests, responses = deserialize(yaml.safe_dump(_fold_parsed_bodies(data)), yamlserializer)[:2]
    except Exception as exc:  # vcrpy's loader raises whatever the data makes it trip on
        raise CassetteFormatError(path, "/interactions", f"vcrpy cannot load it: {exc!r}") from None
    redactor = Redactor()
    for request in requests:  # every secret first, so none of them survives in an earlier turn
        redactor.learn(_request_headers(request))
    turns: list[Turn] = []
    skipped: list[str] = []
    user_agent = None
    for position, (request, response) in enumerate(zip(requests, responses, strict=True)):
        pointer = f"/interactions/{position}"
        if request.method != "POST" or not request.path.rstrip("/").endswith("/responses"):
            skipped.append(f"{request.method} {request.uri}")
            continue
        headers = _request_headers(request)
        user_agent = user_agent or headers.get("user-agent") or headers.get("User-Agent")
        try:
            body = parse_json(_text(request.body) or "{}")
            if not isinstance(body, dict):
                raise ValueError("the request body is not a JSON object")
            redactor.learn_tool_credentials(body)
            status = int(response["status"]["code"])
            response_text = _text((response.get("body") or {}).get("string"))
            response_headers = response.get("headers") or {}
            content_type = _header(response_headers, "content-type")
            if content_type.startswith("text/event-stream"):
                events = parse_sse(response_text)
                outcome = terminal_outcome(events[-1].get("type")) if events else "error"
                answer: dict[str, Any] | None = None
            else:
                events, answer = [], parse_json(response_text)
                if not isinstance(answer, dict):
                    raise ValueError("the response body is not a JSON object")
                outcome = "completed" if status < 400 else "http_error"
        except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as exc:
            raise CassetteFormatError(path, pointer, f"cannot read this interaction: {exc}") from None
        turns.append(
            Turn(
                request=redactor.scrub(redact_request(body)),
                events=tuple(RecordedEvent(0.0, redactor.scrub(e)) for e in events),
                transport="http",
                connection=0,
                outcome=outcome,
                status=status,
                body=None if answer is None else redactor.scrub(answer),
                headers=_kept_headers(redactor, status, response_headers),
            )
        )
    cassette = Cassette(
        turns=tuple(turns),
        recorded_with=RecordedWith(
            plugin_version=__version__,
            transport="http",
            upstream_host=(requests[0].host if requests else None),
            user_agent=user_agent,
        ),
        recorded_at=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        connections=(ConnectionRecord(id=0, transport="http", opened_at_ms=0.0),),
    )
    return ImportResult(cassette, tuple(skipped))
