from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from routerapp.services.demo import DEMO_PASSWORD, demo_seed


class Command(BaseCommand):
    help = "Load the demo: simulator provider, list prices, three goals, one login per role."

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_seed()
        self.stdout.write(
            f"demo ready: {created['goals']} goals and {created['users']} users created "
            f"(logins admin/operator/approver/viewer, password {DEMO_PASSWORD})"
        )
