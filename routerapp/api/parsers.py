"""The only body parser of /api/v1: JSON, refusing what PostgreSQL or Python cannot take.

DRF's own JSONParser passes NUL characters and lone surrogates through to the queries (a 500
from PostgreSQL) and lets a RecursionError escape on deeply nested bodies. This one answers 400:
a field error keyed by the JSON path for a bad string or number, a parse error otherwise.
Form and multipart parsers are left out on purpose: every client of this API sends JSON, and
one parser means one place to check.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers

from routerapp.input_safety import MAX_JSON_DEPTH, TooDeep, UnsafeInput, json_loads

__all__ = ["MAX_JSON_DEPTH", "StrictJSONParser"]


class StrictJSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = codecs.decode(stream.read(), encoding)
            return json_loads(text, max_depth=MAX_JSON_DEPTH)
        except UnsafeInput as error:
            if error.path and not isinstance(error, TooDeep):
                raise exceptions.ValidationError({error.path: [error.message]}) from None
            raise exceptions.ParseError(error.message) from None
        except (ValueError, LookupError) as error:  # malformed, bad charset, 5,000-digit number
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
