from __future__ import annotations

from django.apps import AppConfig


class RouterAppConfig(AppConfig):
    name = "routerapp"
    label = "routerapp"
    verbose_name = "routerapp"

    def ready(self) -> None:
        # Loaded here, not in routerapp/__init__.py, so `import routerapp.engine` stays Django-free.
        # The system checks register themselves on import.
        from routerapp import celery, checks  # noqa: F401
