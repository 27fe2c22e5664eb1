"""What the router has learned: posteriors per (path, bucket), the controller's observations."""

from __future__ import annotations

from django.db import models

GOAL_WIDE = ""  # the bucket name of the goal-wide posterior every outcome also updates


class Posterior(models.Model):
    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="posteriors")
    path = models.ForeignKey("routerapp.Path", on_delete=models.CASCADE, related_name="posteriors")
    bucket = models.CharField(max_length=100, blank=True, default=GOAL_WIDE)
    # Floats: outcomes may be scores in [0, 1] and counts decay with the half-life.
    successes = models.FloatField(default=0.0)
    failures = models.FloatField(default=0.0)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["path", "bucket"], name="unique_posterior_per_bucket")
        ]
        indexes = [models.Index(fields=["goal", "bucket"])]

    def __str__(self) -> str:
        return f"{self.path} [{self.bucket or 'goal'}] s={self.successes:.1f} f={self.failures:.1f}"


class ControllerObservation(models.Model):
    """A decision's first outcome as the quality controller sees it: an insert-only log.

    Written in the same statement as the outcome; `services.controller` folds a goal's rows
    into `Goal.controller_state` in (xid, id) order, and only rows whose transaction ended
    before the oldest one still running, so a row that commits late is never skipped.
    """

    # Indexed with xid below: a fold reads one goal's range of transaction ids.
    goal = models.ForeignKey(
        "routerapp.Goal", on_delete=models.CASCADE, related_name="+", db_index=False
    )

    class Kind(models.TextChoices):
        OUTCOME = "outcome", "The served path's first outcome"
        # A judged shadow: the baseline path's success on a random sample of calls, an
        # unbiased estimate of the reference quality (services/shadows.py).
        REFERENCE = "reference", "The baseline's success measured by a shadow"

    decision = models.ForeignKey(
        "routerapp.RoutingDecision", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, db_default=Kind.OUTCOME)
    path = models.ForeignKey("routerapp.Path", on_delete=models.CASCADE, related_name="+")
    bucket = models.CharField(max_length=100, blank=True)
    value = models.FloatField()  # the first outcome; later changes move posteriors only
    reference_quality = models.FloatField()  # Ranking.reference_quality of the decision
    # PostgreSQL's pg_current_xact_id() of the inserting transaction (xid8, as a number).
    xid = models.BigIntegerField()

    class Meta:
        indexes = [models.Index(fields=["goal", "xid"])]
        constraints = [
            models.UniqueConstraint(fields=["decision", "kind"], name="one_observation_per_kind")
        ]

    def __str__(self) -> str:
        return f"{self.decision_id}: {self.value} vs {self.reference_quality:.3f}"
