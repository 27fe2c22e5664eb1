"""Server time of every dashboard page, with Django's test Client (no network, no browser).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/routerapp_bench DEBUG=true \
        python manage.py generate_decisions --count 1000000
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/routerapp_bench DEBUG=true \
        python bench/pages.py --repeat 15

Signs in as the demo admin, requests each page once to warm up, then N times, and prints the
median and the slowest time in milliseconds. Run it against a benchmark database, never
production: it creates the demo users if they are missing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "routerapp.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import reverse  # noqa: E402

from routerapp.models import Goal, RoutingDecision  # noqa: E402
from routerapp.selectors.decisions import DecisionFilters, decision_list  # noqa: E402
from routerapp.services.demo import demo_seed  # noqa: E402

BUDGET_MS = 300.0


def pages() -> list[tuple[str, str]]:
    goal = Goal.objects.order_by("slug").first()
    if goal is None:
        raise SystemExit("No goal: run `manage.py generate_decisions` first.")
    newest = RoutingDecision.objects.order_by("-created_at")
    decision = newest.values_list("request_id", flat=True).first()
    first = decision_list(filters=DecisionFilters(), limit=50)
    older = f"{reverse('dashboard:decisions')}?older={first.older}" if first.older else None
    listed = [
        ("overview 24h", f"{reverse('dashboard:overview')}?window=24h"),
        ("overview 7d", reverse("dashboard:overview")),
        ("overview 30d", f"{reverse('dashboard:overview')}?window=30d"),
        ("goal detail", reverse("dashboard:goal-detail", args=[goal.slug])),
        ("goal live (htmx)", reverse("dashboard:goal-live", args=[goal.slug])),
        ("savings 30d", reverse("dashboard:savings")),
        ("savings 30d hourly", f"{reverse('dashboard:savings')}?granularity=hour"),
        ("decisions", reverse("dashboard:decisions")),
        ("decisions goal filter", f"{reverse('dashboard:decisions')}?goal={goal.slug}"),
        ("decisions failures", f"{reverse('dashboard:decisions')}?outcome=failure"),
        ("configuration", reverse("dashboard:configuration")),
        ("playground (form)", reverse("dashboard:playground")),
        ("api keys", reverse("dashboard:api-keys")),
        ("api savings json", reverse("report-savings")),
        ("api savings csv", f"{reverse('report-savings')}?format=csv"),
    ]
    if older:
        listed.insert(8, ("decisions older page", older))
    if decision:
        listed.insert(9, ("decision detail", reverse("dashboard:decision-detail", args=[decision])))
    return listed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    settings.ALLOWED_HOSTS = ["*"]
    demo_seed()
    client = Client()
    client.login(username="admin", password="routerapp-demo")
    decisions = RoutingDecision.objects.order_by("-id").values_list("id", flat=True).first() or 0
    print(f"decisions (max id): {decisions:,}; repeat {args.repeat}")
    print(f"{'page':28} {'median ms':>10} {'max ms':>8}")
    worst = 0.0
    for name, url in pages():
        response = client.get(url)  # warm-up (and a check)
        if response.status_code != 200:
            raise SystemExit(f"{name}: {url} answered {response.status_code}")
        timings = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            client.get(url)
            timings.append((time.perf_counter() - started) * 1000)
        median = statistics.median(timings)
        worst = max(worst, median)
        flag = "" if median < BUDGET_MS else "  OVER BUDGET"
        print(f"{name:28} {median:10.1f} {max(timings):8.1f}{flag}")
    print(f"slowest median: {worst:.1f} ms (budget {BUDGET_MS:.0f} ms)")


if __name__ == "__main__":
    main()
