"""Change requests (four eyes) and the goal versions they create."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class ChangeRequest(models.Model):
    """A proposed configuration of one goal: an immutable snapshot (with its hash) made against
    a base version. Approving applies exactly that snapshot and creates a new version."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        APPROVED = "approved", "Approved"
        APPLIED = "applied", "Applied"
        REJECTED = "rejected", "Rejected"
        STALE = "stale", "Stale"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Kind(models.TextChoices):
        CHANGE = "change", "Change"
        ROLLBACK = "rollback", "Rollback"
        SUGGESTION = "suggestion", "Suggestion"

    goal = models.ForeignKey(
        "routerapp.Goal", on_delete=models.CASCADE, related_name="change_requests"
    )
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.CHANGE)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_key = models.ForeignKey(
        "routerapp.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    base_version = models.PositiveIntegerField()
    snapshot = models.JSONField()  # the whole proposed configuration (services/governance.py)
    snapshot_hash = models.CharField(max_length=64)
    diff = models.JSONField(default=list)  # [{"field", "from", "to"}] readable, per field/rule
    reason = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    projection = models.JSONField(default=dict, blank=True)
    # What a suggestion is about (e.g. "route:complexity:simple->gpt-4o-mini"); at most one
    # pending request per goal and key.
    suggestion_key = models.CharField(max_length=200, blank=True)
    rollback_of_version = models.PositiveIntegerField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "-created_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["goal", "suggestion_key"],
                condition=Q(status="pending") & ~Q(suggestion_key=""),
                name="one_pending_suggestion_per_key",
            )
        ]

    def __str__(self) -> str:
        return f"CR#{self.pk} {self.goal_id} {self.status}"


class ChangeRequestComment(models.Model):
    change_request = models.ForeignKey(
        ChangeRequest, on_delete=models.CASCADE, related_name="comments"
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "routerapp.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # "comment", or the decision it came with: "approve", "reject", "withdraw".
    action = models.CharField(max_length=10, default="comment")
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.action} on CR#{self.change_request_id}"


class GoalVersion(models.Model):
    """The configuration a goal had at a version: what rollback proposes again."""

    goal = models.ForeignKey("routerapp.Goal", on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    snapshot = models.JSONField()
    snapshot_hash = models.CharField(max_length=64)
    change_request = models.ForeignKey(
        ChangeRequest, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["goal_id", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["goal", "version"], name="unique_goal_version")
        ]

    def __str__(self) -> str:
        return f"{self.goal_id} v{self.version}"
