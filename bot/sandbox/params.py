"""Typed access to Bot API call parameters, from JSON, form-urlencoded or multipart bodies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import bad_request


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content: bytes
    content_type: str


class Params:
    """The parameters of one call; form values arrive as strings and are coerced like Telegram."""

    def __init__(
        self, values: Mapping[str, Any], files: Mapping[str, UploadedFile] | None = None
    ) -> None:
        self._values = dict(values)
        self._files = dict(files or {})

    def has(self, name: str) -> bool:
        """Whether the parameter was given (and is not null)."""
        return self._values.get(name) is not None or name in self._files

    def get_str(self, name: str) -> str | None:
        """Return a string parameter, or None when absent."""
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def get_int(self, name: str) -> int | None:
        """Return an integer parameter, or None when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            raise bad_request(f'field "{name}" must be of type Integer')
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Integer') from None

    def get_float(self, name: str) -> float | None:
        """Return a number parameter, or None when absent."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f'field "{name}" must be of type Number') from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        """Return a boolean parameter ("true"/"false"/"1"/"0" in forms)."""
        value = self._values.get(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0", ""):
            return False
        raise bad_request(f'field "{name}" must be of type Boolean')

    def get_json(self, name: str, what: str | None = None) -> Any:
        """Return a JSON-valued parameter (object or array), decoding it when sent as a string."""
        value = self._values.get(name)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                raise bad_request(f"can't parse {what or name} JSON object") from None
        return value

    def chat_id(self) -> int | str:
        """Return the required ``chat_id`` (an integer or an ``@username``)."""
        value = self._values.get("chat_id")
        if value is None or value == "":
            raise bad_request("chat_id is empty")
        if isinstance(value, str) and value.startswith("@"):
            return value
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request("chat not found") from None

    def get_file(self, name: str) -> UploadedFile | str | None:
        """Return an uploaded file (direct part or ``attach://`` reference) or a file_id / URL."""
        if name in self._files:
            return self._files[name]
        value = self.get_str(name)
        if value is None or value == "":
            return None
        if value.startswith("attach://"):
            attached = self._files.get(value.removeprefix("attach://"))
            if attached is None:
                raise bad_request(f"file {value} not found in the request")
            return attached
        return value

    def files_for(self, reference: Any, name: str) -> dict[str, UploadedFile]:
        """Resolve an ``attach://`` reference (or file_id) to the file parts for ``name``."""
        if isinstance(reference, str) and reference.startswith("attach://"):
            attached = self._files.get(reference.removeprefix("attach://"))
            if attached is None:
                raise bad_request(f"file {reference} not found in the request")
            return {name: attached}
        return {}

    def summary(self) -> dict[str, Any]:
        """Return the parameters for the call log, with file contents summarised."""
        summary = dict(self._values)
        for name, upload in self._files.items():
            summary[name] = f"<file {upload.filename!r}, {len(upload.content)} bytes>"
        return summary
