from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routerapp.settings")
django_application = get_asgi_application()

# Imported once the apps are loaded. /v1 skips Django's middleware chain: see the module.
from routerapp.api.v1_handler import v1_first  # noqa: E402

application = v1_first(django_application)
