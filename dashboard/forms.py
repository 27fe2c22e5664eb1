"""Forms: they parse and validate input only; saving goes through routerapp services."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.urls import reverse
from django.utils import timezone

from routerapp.models import (
    ApiKey,
    ChangeRequest,
    Goal,
    ModelPrice,
    Path,
    Provider,
    RoutingDecision,
)
from routerapp.models.catalog import api_key_env_rule
from routerapp.selectors.audit import AuditFilters
from routerapp.selectors.decisions import DecisionCursor, DecisionFilters
from routerapp.selectors.reports import Granularity

WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}
WINDOW_CHOICES = [
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("custom", "Custom"),
]


class ReportWindowForm(forms.Form):
    """?window=24h|7d|30d|custom&from=YYYY-MM-DD&to=YYYY-MM-DD&goal=<slug>&granularity=hour|day"""

    window = forms.ChoiceField(choices=WINDOW_CHOICES, required=False)
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    goal = forms.SlugField(required=False)
    granularity = forms.ChoiceField(
        choices=[("", "auto"), ("hour", "hour"), ("day", "day")], required=False
    )

    def __init__(self, data: Any = None, *, default_window: str = "7d", **kwargs: Any) -> None:
        data = data.copy() if data is not None else {}
        # `from` and `to` are the public parameter names (shared with the reports API).
        for public, name in (("from", "start"), ("to", "end")):
            if public in data and name not in data:
                data[name] = data[public]
        self.default_window = default_window
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        if cleaned.get("window") == "custom" and not cleaned.get("start"):
            self.add_error("start", "A custom window needs a start date.")
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "The end is before the start.")
        return cleaned

    def window_bounds(self) -> tuple[datetime, datetime, Granularity, str]:
        """(start, end, granularity, window name); falls back to the default window on bad input."""
        cleaned = self.cleaned_data if self.is_valid() else {}
        now = timezone.now()
        name = cleaned.get("window") or self.default_window
        if cleaned.get("start") and (name == "custom" or not cleaned.get("window")):
            name = "custom"
            start = datetime.combine(cleaned["start"], time.min, tzinfo=UTC)
            end_day = cleaned.get("end") or now.date()
            end = datetime.combine(end_day + timedelta(days=1), time.min, tzinfo=UTC)
        else:
            name = name if name in WINDOWS else self.default_window
            end = now
            start = now - WINDOWS[name]
        granularity: Granularity = cleaned.get("granularity") or (
            "hour" if end - start <= timedelta(days=2) else "day"
        )
        return start, end, granularity, name


class DecisionFilterForm(forms.Form):
    goal = forms.SlugField(required=False)
    path = forms.SlugField(required=False)
    reason = forms.ChoiceField(
        choices=[("", "any reason"), *RoutingDecision.Reason.choices], required=False
    )
    outcome = forms.ChoiceField(
        choices=[
            ("", "any outcome"),
            ("success", "success"),
            ("failure", "failure"),
            ("none", "no outcome"),
        ],
        required=False,
    )
    older = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)
    newer = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)

    def filters(self) -> DecisionFilters:
        cleaned = self.cleaned_data if self.is_valid() else {}
        return DecisionFilters(
            goal=cleaned.get("goal") or None,
            path=cleaned.get("path") or None,
            reason=cleaned.get("reason") or None,
            outcome=cleaned.get("outcome") or None,
        )

    def cursors(self) -> tuple[DecisionCursor | None, DecisionCursor | None]:
        cleaned = self.cleaned_data if self.is_valid() else {}
        older = DecisionCursor.decode(cleaned["older"]) if cleaned.get("older") else None
        newer = DecisionCursor.decode(cleaned["newer"]) if cleaned.get("newer") else None
        return older, newer


REASON_HELP = (
    "Why this change? Required when a routing setting changes: those changes become a change "
    "request that another person approves."
)


def _reason_field() -> forms.CharField:
    return forms.CharField(
        required=False,
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason for the change",
        help_text=REASON_HELP,
    )


class GoalForm(forms.ModelForm):
    """Every goal field in one form: the view saves the descriptive ones (slug, description,
    status) directly and proposes the routing ones (GOVERNED_GOAL_FIELDS) as a change request."""

    reason = _reason_field()
    alert_webhook_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="Posted to when the regret alert turns on or off (empty: no webhook).",
    )

    class Meta:
        model = Goal
        # The classifier, shadow, judge and regret settings are governed like the rest.
        fields = [*Goal.EDITABLE_FIELDS, *Goal.SETTINGS_FIELDS]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "classifier_prompt": forms.Textarea(attrs={"rows": 2}),
            "judge_rubric": forms.Textarea(attrs={"rows": 2}),
            "success_when": forms.Textarea(
                attrs={"rows": 3, "spellcheck": "false", "class": "code"}
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Validated live as it is typed (htmx), and again on save.
        self.fields["success_when"].widget.attrs.update(
            {
                "hx-post": reverse("dashboard:expression-check"),
                "hx-trigger": "input changed delay:300ms, load",
                "hx-target": "#success-when-check",
            }
        )
        if self.instance.pk is None:
            # A new goal has no paths yet (baseline, classifier, judge need them); it starts
            # with the defaults and is created directly (version 1).
            for name in ("baseline_path", "reason", *Goal.SETTINGS_FIELDS):
                del self.fields[name]
        else:
            for name in ("baseline_path", "classifier_path"):
                choice = cast(forms.ModelChoiceField, self.fields[name])  # a ForeignKey
                choice.queryset = Path.objects.filter(goal=self.instance)


class JsonObjectField(forms.Field):
    """A JSON object typed into a textarea ({} when empty)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict):
            return json.dumps(value, indent=1) if value else ""
        return value

    def to_python(self, value: Any) -> dict[str, Any]:
        text = "" if value in self.empty_values else str(value)
        if not text.strip():
            return {}
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from error
        if not isinstance(parsed, dict):
            raise forms.ValidationError('Must be a JSON object, e.g. {"top_p": 0.9}.')
        return parsed


class PathForm(forms.ModelForm):
    """Every path field: weight, priors and enabled (GOVERNED_PATH_FIELDS) of an existing path
    are proposed as a change request; the call settings save directly."""

    reason = _reason_field()
    extra_params = JsonObjectField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Extra call parameters as a JSON object.",
    )

    class Meta:
        model = Path
        fields = list(Path.EDITABLE_FIELDS)
        widgets = {"system_prompt": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            del self.fields["reason"]  # a new path is added directly


class ProviderForm(forms.ModelForm):
    base_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        help_text="e.g. https://api.openai.com/v1 (ignored for the simulator)",
    )
    api_key = forms.CharField(
        required=False,
        max_length=500,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: never displayed again. Leave empty to keep the current key; "
        "a new base URL or kind clears it unless it is entered again.",
    )

    class Meta:
        model = Provider
        fields = [
            "name",
            "kind",
            "base_url",
            "api_key",
            "api_key_env",
            "timeout_seconds",
            "max_retries",
            "enabled",
        ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["api_key_env"].help_text = (
            f"Or the environment variable holding the key: {api_key_env_rule()} "
            "Leave empty to keep the current source."
        )
        if self.instance.pk is not None:
            # Shown empty like the key, so a new base URL and the key source it needs can be
            # saved together (the page says where the current key comes from).
            self.initial["api_key_env"] = ""

    def catalog_data(self) -> dict[str, Any]:
        """The data for `provider_save`: an empty key or variable name keeps the current one."""
        data = dict(self.cleaned_data)
        for name in ("api_key", "api_key_env"):
            if not data.get(name):
                data.pop(name, None)
        return data


class ModelPriceForm(forms.ModelForm):
    class Meta:
        model = ModelPrice
        fields = ["provider", "model", "input_per_million", "output_per_million", "effective_from"]
        widgets = {"effective_from": forms.DateInput(attrs={"type": "date"})}


class ExpressionCheckForm(forms.Form):
    success_when = forms.CharField(required=False, strip=False, max_length=10_000)


class PlaygroundForm(forms.Form):
    goal = forms.ModelChoiceField(
        queryset=Goal.objects.filter(status=Goal.Status.ACTIVE),
        to_field_name="slug",
        empty_label=None,
    )
    prompt = forms.CharField(max_length=20_000, widget=forms.Textarea(attrs={"rows": 4}))


class PlaygroundOutcomeForm(forms.Form):
    request_id = forms.CharField(max_length=40)
    outcome = forms.ChoiceField(choices=[("success", "success"), ("failure", "failure")])

    @property
    def value(self) -> float:
        return 1.0 if self.cleaned_data["outcome"] == "success" else 0.0


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100)
    scopes = forms.MultipleChoiceField(
        choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    allowed_goals = forms.ModelMultipleChoiceField(
        queryset=Goal.objects.order_by("slug"),
        to_field_name="slug",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked = every goal.",
    )
    rate_limit_per_minute = forms.IntegerField(required=False, min_value=1)


# --------------------------------------------------------------------------- governance


class AuditFilterForm(forms.Form):
    """?actor=&action=&object_type=&goal=&from=YYYY-MM-DD&to=YYYY-MM-DD (inclusive)&page="""

    actor = forms.CharField(required=False, max_length=150)
    action = forms.CharField(required=False, max_length=64)
    object_type = forms.CharField(required=False, max_length=64)
    goal = forms.SlugField(required=False)
    start = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label="To (inclusive)", widget=forms.DateInput(attrs={"type": "date"})
    )
    page = forms.IntegerField(required=False, min_value=1)

    def __init__(self, data: Any = None, **kwargs: Any) -> None:
        data = data.copy() if data is not None else {}
        for public, name in (("from", "start"), ("to", "end")):
            if public in data and name not in data:
                data[name] = data[public]
        super().__init__(data, **kwargs)

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "The end is before the start.")
        return cleaned

    def filters(self) -> AuditFilters:
        cleaned = self.cleaned_data if self.is_valid() else {}
        start, end = cleaned.get("start"), cleaned.get("end")
        return AuditFilters(
            actor=cleaned.get("actor") or None,
            action=cleaned.get("action") or None,
            object_type=cleaned.get("object_type") or None,
            goal=cleaned.get("goal") or None,
            start=datetime.combine(start, time.min, tzinfo=UTC) if start else None,
            end=datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC) if end else None,
        )

    def page_number(self) -> int:
        return (self.cleaned_data.get("page") if self.is_valid() else None) or 1


class ChangeRequestFilterForm(forms.Form):
    status = forms.ChoiceField(
        choices=[("", "any status"), *ChangeRequest.Status.choices], required=False
    )
    goal = forms.SlugField(required=False)
    page = forms.IntegerField(required=False, min_value=1)


class CommentForm(forms.Form):
    body = forms.CharField(
        max_length=10_000, label="Comment", widget=forms.Textarea(attrs={"rows": 3})
    )


class DecisionForm(forms.Form):
    """Approve / reject / withdraw, with an optional comment."""

    comment = forms.CharField(
        required=False, max_length=10_000, widget=forms.Textarea(attrs={"rows": 2})
    )


class RollbackForm(forms.Form):
    version = forms.IntegerField(min_value=1)
    reason = forms.CharField(required=False, max_length=5_000)


class RuleSetForm(forms.Form):
    """The rule editor: the ordered rule list as JSON (kept in sync by rule_editor.js from the
    rows on the page) and the reason for the change request."""

    rules = forms.CharField(required=False, max_length=200_000, widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=5_000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Reason for the change",
        help_text="The rule set is proposed as a change request that another person approves.",
    )

    def clean_rules(self) -> list[Any]:
        return _json_list(self.cleaned_data["rules"])


class RuleTestForm(forms.Form):
    """A sample request for the rule editor's test box: the rules being edited, the messages
    and the metadata as JSON."""

    rules = forms.CharField(required=False, max_length=200_000)
    messages = forms.CharField(max_length=200_000)
    metadata = forms.CharField(required=False, max_length=50_000)
    # The classifier is not called in a test: the label to assume.
    classifier_label = forms.ChoiceField(
        choices=[("", "none"), ("simple", "simple"), ("complex", "complex")], required=False
    )

    def clean_rules(self) -> list[Any]:
        return _json_list(self.cleaned_data["rules"])

    def clean_messages(self) -> list[Any]:
        messages = _json_list(self.cleaned_data["messages"])
        if not messages:
            raise forms.ValidationError('Give at least one message: [{"role": "user", ...}].')
        for message in messages:
            if not isinstance(message, dict) or "role" not in message:
                raise forms.ValidationError(
                    'Each message is an object with a "role" and a "content".'
                )
        return messages

    def clean_metadata(self) -> dict[str, Any]:
        return JsonObjectField(required=False).clean(self.cleaned_data["metadata"])


def _json_list(text: str) -> list[Any]:
    if not text.strip():
        return []
    try:
        parsed = json.loads(text)
    except ValueError as error:
        raise forms.ValidationError(f"Not valid JSON: {error}") from error
    if not isinstance(parsed, list):
        raise forms.ValidationError("Must be a JSON list.")
    return parsed
