"""Limit/offset pagination with a ceiling, for every list under /api/v1.

DRF's LimitOffsetPagination without `max_limit` passed `?limit=99999999999999999999` to
PostgreSQL (bigint out of range, a 500), and it silently ignores a limit or offset that is not a
number. Here:
- a limit above MAX_PAGE_LIMIT is clamped to it (as DRF, LiteLLM and Portkey lists do), so
  `limit=99999999999999999999` is a page of 500;
- an offset past the last row is an empty page (DRF answers that from the count; no query runs
  with the offset), however large the number;
- a limit or offset that is not an integer, a limit below 1 or an offset below 0 is a 400 field
  error: a client that sent `limit=abc` is told, not handed a page it did not ask for.
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_PAGE_LIMIT = 500
# More digits than any table has rows: parsed as this instead, so no huge integer is built.
_LONGEST_NUMBER = 18
_DIGITS = re.compile(r"[0-9]+")


def _whole_number(request: Request, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    digits = raw.lstrip("0") or "0"
    if not _DIGITS.fullmatch(raw) or (len(digits) <= _LONGEST_NUMBER and int(digits) < minimum):
        raise ValidationError({name: [f"Must be an integer of at least {minimum}."]})
    return 10**_LONGEST_NUMBER if len(digits) > _LONGEST_NUMBER else int(digits)


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_PAGE_LIMIT

    def get_limit(self, request: Request) -> int | None:
        limit = _whole_number(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, MAX_PAGE_LIMIT)

    def get_offset(self, request: Request) -> int:
        return _whole_number(request, self.offset_query_param, minimum=0) or 0

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Number of results to return per page (default {self.default_limit}); "
                    f"above {MAX_PAGE_LIMIT}, {MAX_PAGE_LIMIT} are returned."
                )
            else:
                parameter["schema"]["minimum"] = 0
                parameter["description"] = (
                    "The index of the first result; past the end, the page is empty."
                )
        return parameters
