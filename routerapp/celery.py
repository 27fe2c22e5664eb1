"""The Celery application. Start a worker with `celery -A routerapp.celery worker`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routerapp.settings")

app = Celery("routerapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["routerapp"])
