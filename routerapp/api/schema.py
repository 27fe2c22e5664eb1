"""What the OpenAPI document says about errors, added in one place (a drf-spectacular hook).

drf-spectacular documents only the success answer of each operation. Every /api/v1 operation
can also answer: 400 (field errors, a refused body or URL, a bad `limit`), 401 (no or a bad
key), 403 (scope, role or goal not allowed), 404 (no such object, or one of a goal the key may
not see, or an unknown `?format=`) and 429 (rate limit). Clients and the schema fuzz test
(tests/api/test_schema_fuzz.py) rely on those being documented with their bodies.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"

ERROR_SCHEMAS: dict[str, dict[str, Any]] = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "FieldErrors": {
        "type": "object",
        "description": (
            "Messages keyed by field name (or JSON path such as `allowed_goals[0]`), each a list"
            " of strings (nested objects for nested fields); or `detail` for the whole request."
        ),
        "additionalProperties": {},
    },
}
ERROR_RESPONSES: dict[str, tuple[str, str]] = {
    "400": ("Invalid input; nothing was changed.", "FieldErrors"),
    "401": ("Missing, unknown or revoked API key.", "ErrorDetail"),
    "403": ("The key's scope, the user's role or the goal is not allowed.", "ErrorDetail"),
    "404": ("No such object, or none this key may see.", "ErrorDetail"),
    "429": ("Rate limit exceeded.", "ErrorDetail"),
}


def _media_types(responses: dict[str, Any]) -> list[str]:
    """The content types the operation answers in (errors are rendered the same way)."""
    for status, response in sorted(responses.items()):
        if status.startswith("2") and response.get("content"):
            return list(response["content"])
    return [JSON]


def error_responses(result: dict[str, Any], generator: Any, **kwargs: Any) -> dict[str, Any]:
    result.setdefault("components", {}).setdefault("schemas", {}).update(ERROR_SCHEMAS)
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            media_types = _media_types(responses)
            for status, (description, schema_name) in ERROR_RESPONSES.items():
                reference = {"$ref": f"#/components/schemas/{schema_name}"}
                responses.setdefault(
                    status,
                    {
                        "description": description,
                        "content": {
                            media_type: {
                                "schema": reference if "json" in media_type else {"type": "string"}
                            }
                            for media_type in media_types
                        },
                    },
                )
    return result
