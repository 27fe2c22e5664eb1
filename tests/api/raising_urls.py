"""URL conf of the JSON-error tests: the real routes plus views that fail the way a bug would,
one async under /v1 (like the completion view) and one DRF view under /api/v1."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from routerapp.urls import urlpatterns as real_urlpatterns

PLANTED = "planted failure with an internal detail: TOKEN-IN-TRACEBACK"


@csrf_exempt
async def v1_crash(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(PLANTED)


class ApiCrash(APIView):
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    def get(self, request: Request) -> Response:
        raise RuntimeError(PLANTED)


urlpatterns = [
    path("v1/crash", v1_crash),
    path("api/v1/crash", ApiCrash.as_view()),
    *real_urlpatterns,
]
