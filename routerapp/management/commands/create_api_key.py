from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from routerapp.errors import RouterError
from routerapp.models import Goal
from routerapp.services.access import api_key_create


class Command(BaseCommand):
    help = "Create an API key and print it once (it is stored hashed and cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--scopes",
            required=True,
            help="comma-separated: completions,outcomes,read,config,admin",
        )
        parser.add_argument(
            "--user",
            default=None,
            help="the user the key acts for: its rights are its scopes within this user's role "
            "(needed to propose or approve change requests with the config scope)",
        )
        parser.add_argument("--goals", default="", help="comma-separated goal slugs (default: all)")
        parser.add_argument("--rate-limit", type=int, default=None, help="requests per minute")

    def handle(self, *args: Any, **options: Any) -> None:
        slugs = [slug for slug in options["goals"].split(",") if slug]
        goals = list(Goal.objects.filter(slug__in=slugs))
        missing = set(slugs) - {goal.slug for goal in goals}
        if missing:
            raise CommandError(f"Unknown goals: {', '.join(sorted(missing))}")
        owner = None
        if options["user"]:
            users = get_user_model().objects
            owner = users.filter(**{users.model.USERNAME_FIELD: options["user"]}).first()
            if owner is None or not owner.is_active:
                raise CommandError(f"Unknown or inactive user: {options['user']}")
        try:
            _, raw = api_key_create(
                name=options["name"],
                scopes=[s for s in options["scopes"].split(",") if s],
                goals=goals,
                rate_limit_per_minute=options["rate_limit"],
                created_by=owner,
            )
        except RouterError as error:
            raise CommandError(error.message) from None
        self.stdout.write(raw)
