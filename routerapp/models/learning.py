"""What the router has learned: posteriors per (path, bucket)."""

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
