"""Governance pages: the change-request queue and page, goal history and rollback, the rule
editor with its test box, the audit log; and the "propose change" handling of the goal and path
forms (called by dashboard/views.py).

Roles (routerapp.roles), one rule: viewers see every page here; operators propose (forms, rule
editor, rollback) and withdraw their own requests; approvers and admins approve or reject.
Whether a particular person may decide a particular request (four eyes, stale, applied ...) is
the governance service's rule: its refusal is shown on the page with the status it means
(403, 409) and nothing changes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.forms import BaseForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard import governance_charts as charts
from dashboard.decorators import role_required
from dashboard.forms import (
    AuditFilterForm,
    ChangeRequestFilterForm,
    CommentForm,
    DecisionForm,
    RollbackForm,
    RuleSetForm,
    RuleTestForm,
)
from routerapp.errors import RouterError
from routerapp.models import ChangeRequest, Goal, Path, Provider
from routerapp.roles import user_can
from routerapp.selectors import audit as audit_selectors
from routerapp.selectors import governance as governance_selectors
from routerapp.selectors.rule_editor import rule_template_for
from routerapp.selectors.rules_test import rules_dry_run
from routerapp.services import governance
from routerapp.services.catalog import catalog_save

AUDIT_PER_PAGE = 50
CHANGE_REQUESTS_PER_PAGE = 50
# Non-governed fields of the goal and path forms: saved at once, audited (catalog_save).
GOAL_DIRECT_FIELDS = ("slug", "description", "status")
PATH_DIRECT_FIELDS = (
    "name",
    "provider",
    "model",
    "temperature",
    "max_tokens",
    "system_prompt",
    "extra_params",
    "expected_output_tokens",
)
REASON_REQUIRED = "Give a reason: routing settings change through a change request."
REFUSAL_STATUS = {
    governance.ChangeNotAllowed: 403,
    governance.ChangeConflict: 409,
    governance.ChangeInvalid: 400,
}


def _ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR")


def _add_change_errors(
    form: BaseForm, error: governance.ChangeInvalid, *, prefix: str = ""
) -> None:
    """The service's errors (keyed by a dotted path into `changes`: `changes.quality_target`,
    `changes.paths.mini.weight`, `changes.rules`) on the form field they name, the others at
    the top with their key, so the message still says where."""
    for key, texts in error.errors.items():
        name = key.removeprefix("changes.").removeprefix(prefix)
        for text in texts:
            if name in form.fields:
                form.add_error(name, text)
            elif name in ("", "changes", "__all__", "non_field_errors"):
                form.add_error(None, text)
            else:
                form.add_error(None, f"{name}: {text}")


def _cr_url(change_request: ChangeRequest) -> str:
    return reverse("dashboard:change-request-detail", args=[change_request.pk])


# --------------------------------------------------------------------------- propose forms


def _snapshot_value(value: Any) -> Any:
    """A form value as the snapshot holds it: a path or provider by its name, others as they are."""
    if isinstance(value, Path | Provider):
        return value.name
    return value


def _same(old: Any, new: Any) -> bool:
    if isinstance(new, Decimal) and old is not None:
        return Decimal(str(old)) == new  # money is a decimal string in the snapshot
    return bool(old == new)


def goal_form_submit(request: HttpRequest, form: BaseForm, *, goal: Goal) -> HttpResponse | None:
    """Save the goal form: descriptive fields directly, routing fields as a change request
    (all or nothing). Returns the redirect, or None with errors added to the form."""
    data = form.cleaned_data
    direct = {name: data[name] for name in GOAL_DIRECT_FIELDS if data[name] != getattr(goal, name)}
    current = governance.goal_snapshot(goal)["goal"]
    changes = {
        name: _snapshot_value(data[name])
        for name in governance.GOVERNED_GOAL_FIELDS
        if name in data and not _same(current.get(name), _snapshot_value(data[name]))
    }
    return _submit(request, form, goal=goal, instance=goal, direct=direct, changes=changes)


def path_form_submit(request: HttpRequest, form: BaseForm, *, path: Path) -> HttpResponse | None:
    """Save the path form: call settings directly; weight, priors and enabled as a change
    request (the four together, as the snapshot holds them)."""
    data = form.cleaned_data
    direct = {}
    for name in PATH_DIRECT_FIELDS:
        old, new = getattr(path, name), data[name]
        if getattr(old, "pk", old) != getattr(new, "pk", new):
            direct[name] = new
    governed = {name: data[name] for name in governance.GOVERNED_PATH_FIELDS}
    current = {name: getattr(path, name) for name in governance.GOVERNED_PATH_FIELDS}
    changes = {"paths": {path.name: governed}} if governed != current else {}
    if changes and "name" in direct:
        # The change request names the path: a rename applied now would orphan it.
        form.add_error("name", "Rename the path and change its routing settings in two steps.")
        return None
    return _submit(request, form, goal=path.goal, instance=path, direct=direct, changes=changes)


def _submit(
    request: HttpRequest,
    form: BaseForm,
    *,
    goal: Goal,
    instance: Goal | Path,
    direct: dict[str, Any],
    changes: dict[str, Any],
) -> HttpResponse | None:
    label = f"Goal {goal.slug}" if isinstance(instance, Goal) else f"Path {instance}"
    if not direct and not changes:
        messages.info(request, "Nothing changed.")
        return None
    reason = form.cleaned_data.get("reason", "").strip()
    if changes and not reason:
        form.add_error("reason", REASON_REQUIRED)
        return None
    change_request = None
    try:
        with transaction.atomic():
            if changes:
                change_request = governance.change_request_propose(
                    goal=goal, changes=changes, reason=reason, actor=request.user, ip=_ip(request)
                )
            if direct:
                catalog_save(instance=instance, data=direct, actor=request.user, ip=_ip(request))
    except governance.ChangeInvalid as error:
        prefix = "" if isinstance(instance, Goal) else f"paths.{instance.name}."
        _add_change_errors(form, error, prefix=prefix)
        return None
    except (governance.ChangeNotAllowed, governance.ChangeConflict) as error:
        form.add_error(None, str(error))
        return None
    except ValidationError as error:  # e.g. DirectEditRefused: an enabled path's call settings
        for text in error.messages:
            form.add_error(None, text)
        return None
    if direct:
        messages.success(request, f"{label} saved: {', '.join(sorted(direct))}.")
    if change_request is None:
        goal.refresh_from_db(fields=["slug"])
        return redirect("dashboard:goal-edit", slug=goal.slug)
    messages.success(
        request,
        f"Change request #{change_request.pk} proposed: it applies when another person "
        "approves it.",
    )
    return redirect(_cr_url(change_request))


# --------------------------------------------------------------------------- queue


@require_GET
@role_required("view")
def change_request_list(request: HttpRequest) -> HttpResponse:
    form = ChangeRequestFilterForm(request.GET)
    cleaned = form.cleaned_data if form.is_valid() else {}
    requests = governance_selectors.change_requests_visible(request.user).select_related(
        "goal", "author", "decided_by"
    )
    if cleaned.get("status"):
        requests = requests.filter(status=cleaned["status"])
    if cleaned.get("goal"):
        requests = requests.filter(goal__slug=cleaned["goal"])
    page = Paginator(requests.order_by("-created_at", "-id"), CHANGE_REQUESTS_PER_PAGE).get_page(
        cleaned.get("page") or 1
    )
    filters = {key: cleaned[key] for key in ("status", "goal") if cleaned.get(key)}
    return render(
        request,
        "dashboard/change_requests.html",
        {
            "form": form,
            "page": page,
            "filters": filters,
            "goals": Goal.objects.order_by("slug").values_list("slug", flat=True),
        },
    )


# --------------------------------------------------------------------------- one request


def _allowed_actions(request: HttpRequest, change_request: ChangeRequest) -> dict[str, bool]:
    """What the page offers; the service decides again on POST (a forged form changes nothing)."""
    pending = change_request.status == ChangeRequest.Status.PENDING
    is_author = change_request.author_id == request.user.pk
    return {
        "decide": pending and not is_author and user_can(request.user, "approve"),
        "own_pending": pending and is_author and user_can(request.user, "approve"),
        "withdraw": pending and is_author,
        "comment": _may_comment(request),
    }


def _may_comment(request: HttpRequest) -> bool:
    return user_can(request.user, "review")


def _detail_context(request: HttpRequest, change_request: ChangeRequest) -> dict[str, Any]:
    projection = change_request.projection or {}
    return {
        "cr": change_request,
        "goal": change_request.goal,
        "diff": change_request.diff or [],
        "projection": projection,
        "projection_rows": charts.projection_rows(projection),
        "projection_figures": charts.projection_figures(projection),
        "projection_paths": charts.projection_path_rows(projection),
        "comments": change_request.comments.select_related("author").order_by("created_at"),
        "allowed": _allowed_actions(request, change_request),
        "comment_form": CommentForm(),
        "decision_form": DecisionForm(),
        "is_stale_now": (
            change_request.status == ChangeRequest.Status.PENDING
            and change_request.base_version != change_request.goal.version
        ),
    }


def _change_request(pk: int) -> ChangeRequest:
    return get_object_or_404(
        ChangeRequest.objects.select_related("goal", "author", "decided_by", "author_key"), pk=pk
    )


@require_GET
@role_required("view")
def change_request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    change_request = _change_request(pk)
    return render(
        request, "dashboard/change_request_detail.html", _detail_context(request, change_request)
    )


def _refused(
    request: HttpRequest, change_request: ChangeRequest, error: Exception, **extra: Any
) -> HttpResponse:
    """The request page again with the refusal on top, answered with the status it means."""
    change_request.refresh_from_db()  # e.g. an approval of a stale request marked it stale
    context = {**_detail_context(request, change_request), "refusal": str(error), **extra}
    status = next((code for kind, code in REFUSAL_STATUS.items() if isinstance(error, kind)), 400)
    return render(request, "dashboard/change_request_detail.html", context, status=status)


ACTIONS = {
    "approve": ("approve", governance.change_request_approve, "approved and applied"),
    "reject": ("approve", governance.change_request_reject, "rejected"),
    "withdraw": ("operate", governance.change_request_withdraw, "withdrawn"),
}


@require_POST
@role_required("view")
def change_request_decide(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Approve / reject (approvers, not the author) or withdraw (the author)."""
    if action not in ACTIONS:
        raise Http404("No such action.")
    role, service, done = ACTIONS[action]
    if not user_can(request.user, role):
        raise PermissionDenied(f"Your role may not {action} change requests.")
    change_request = _change_request(pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _refused(request, change_request, ValueError("The comment is too long."))
    try:
        change_request = service(
            change_request=change_request,
            actor=request.user,
            comment=form.cleaned_data["comment"],
            ip=_ip(request),
        )
    except (
        governance.ChangeNotAllowed,
        governance.ChangeConflict,
        governance.ChangeInvalid,
    ) as error:
        return _refused(request, change_request, error)
    message = f"Change request #{change_request.pk} {done}."
    if change_request.status == ChangeRequest.Status.APPLIED and change_request.applied_version:
        message += (
            f" {change_request.goal.slug} is now at version {change_request.applied_version}."
        )
    messages.success(request, message)
    return redirect(_cr_url(change_request))


@require_POST
@role_required("view")
def change_request_comment(request: HttpRequest, pk: int) -> HttpResponse:
    if not _may_comment(request):
        raise PermissionDenied("Your role may not comment on change requests.")
    change_request = _change_request(pk)
    form = CommentForm(request.POST)
    if not form.is_valid():
        context = {**_detail_context(request, change_request), "comment_form": form}
        return render(request, "dashboard/change_request_detail.html", context, status=400)
    try:
        governance.change_request_comment(
            change_request=change_request,
            actor=request.user,
            body=form.cleaned_data["body"],
            ip=_ip(request),
        )
    except (governance.ChangeNotAllowed, governance.ChangeConflict) as error:
        return _refused(request, change_request, error)
    messages.success(request, "Comment added.")
    return redirect(_cr_url(change_request) + "#comments")


# --------------------------------------------------------------------------- history


@require_GET
@role_required("view")
def goal_history(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal, slug=slug)
    versions = governance_selectors.goal_versions(goal).select_related(
        "created_by", "change_request"
    )
    return render(
        request,
        "dashboard/goal_history.html",
        {
            "goal": goal,
            "versions": versions,
            "pending": ChangeRequest.objects.filter(
                goal=goal, status=ChangeRequest.Status.PENDING
            ).count(),
        },
    )


@require_POST
@role_required("operate")
def goal_rollback(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal, slug=slug)
    form = RollbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Pick a version to roll back to.")
        return redirect("dashboard:goal-history", slug=goal.slug)
    version = form.cleaned_data["version"]
    try:
        change_request = governance.rollback_propose(
            goal=goal,
            version=version,
            actor=request.user,
            ip=_ip(request),
            reason=form.cleaned_data["reason"] or f"Roll back to version {version}.",
        )
    except (
        governance.ChangeInvalid,
        governance.ChangeNotAllowed,
        governance.ChangeConflict,
    ) as error:
        text = error.errors if isinstance(error, governance.ChangeInvalid) else error
        messages.error(request, f"Rollback to version {version} refused: {text}")
        return redirect("dashboard:goal-history", slug=goal.slug)
    messages.success(
        request,
        f"Change request #{change_request.pk} proposes version {version} again: it applies "
        "when another person approves it.",
    )
    return redirect(_cr_url(change_request))


# --------------------------------------------------------------------------- rule editor


def _rule_editor_context(goal: Goal, form: RuleSetForm, rules: list[Any]) -> dict[str, Any]:
    paths = list(goal.paths.order_by("id").values_list("name", flat=True))
    return {
        "goal": goal,
        "form": form,
        "rules": rules,
        "path_names": paths,
        "rules_template": rule_template_for(goal),
        "sample_messages": '[{"role": "user", "content": "Extract the invoice number: INV-42"}]',
    }


@require_http_methods(["GET", "POST"])
@role_required("operate")
def rule_editor(request: HttpRequest, slug: str) -> HttpResponse:
    goal = get_object_or_404(Goal, slug=slug)
    if request.method == "GET":
        form = RuleSetForm()
        return render(
            request, "dashboard/rule_editor.html", _rule_editor_context(goal, form, goal.rules)
        )
    form = RuleSetForm(request.POST)
    rules: list[Any] = goal.rules
    if form.is_valid():
        rules = form.cleaned_data["rules"]
        if rules == goal.rules:
            form.add_error(None, "The rule set is unchanged: nothing to propose.")
        else:
            try:
                change_request = governance.change_request_propose(
                    goal=goal,
                    changes={"rules": rules},
                    reason=form.cleaned_data["reason"],
                    actor=request.user,
                    ip=_ip(request),
                )
            except governance.ChangeInvalid as error:
                _add_change_errors(form, error)  # `changes.rules` lands on the rules field
            except (governance.ChangeNotAllowed, governance.ChangeConflict) as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    f"Change request #{change_request.pk} proposes the rule set: it applies "
                    "when another person approves it.",
                )
                return redirect(_cr_url(change_request))
    elif "rules" not in form.errors:
        rules = form.cleaned_data.get("rules", goal.rules)
    return render(
        request, "dashboard/rule_editor.html", _rule_editor_context(goal, form, rules), status=200
    )


@require_POST
@role_required("operate")
def rule_test(request: HttpRequest, slug: str) -> HttpResponse:
    """htmx: run the rules being edited (not yet saved) on a sample request; changes nothing."""
    goal = get_object_or_404(Goal, slug=slug)
    form = RuleTestForm(request.POST)
    context: dict[str, Any] = {"form": form}
    if form.is_valid():
        try:
            context["result"] = rules_dry_run(
                goal,
                messages=form.cleaned_data["messages"],
                metadata=form.cleaned_data["metadata"],
                passthrough={},
                rules=form.cleaned_data["rules"],
                classifier_label=form.cleaned_data["classifier_label"],
            )
        except RouterError as error:  # a bad draft or sample (InvalidRequest), no path ...
            context["refused"] = error.message
            context["refused_param"] = error.extra.get("param") or ""
    return render(request, "dashboard/partials/_rule_test.html", context)


# --------------------------------------------------------------------------- audit log


@require_GET
@role_required("view")
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    page = audit_selectors.audit_log_page(
        filters=form.filters(), page=form.page_number(), per_page=AUDIT_PER_PAGE
    )
    actions, types, actors = audit_selectors.audit_choices()
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "dashboard/audit_log.html",
        {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "actions": actions,
            "object_types": types,
            "actors": actors,
            "goals": Goal.objects.order_by("slug").values_list("slug", flat=True),
        },
    )
