"""Admin plumbing shared by the moderation actions of every app: the reason form and the page
that asks for it.

A moderation action in a change list posts twice: first from the change list (Django calls the
action, which answers with the reason page, the selected objects riding along as hidden
fields), then from that page with `apply` and the reason (Django calls the action again, which
now runs the moderation service once per object). The services refuse without a reason too;
the form only says so before anything runs.
"""

from collections.abc import Callable, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse

from chatproject.core.errors import ApplicationError

from .models import ModerationAction

TEMPLATE = "admin/moderation/reason_form.html"
# The reason page lists every selected object and posts its key back: a bounded batch.
BATCH_MAX = 100


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=ModerationAction.REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required. Kept in the moderation log with your account and the time.",
    )


def reason_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    form: forms.Form,
    title: str,
    intro: str,
    targets: Sequence[str],
    submit_label: str,
    queryset: QuerySet | Sequence = (),
    action: str | None = None,
) -> TemplateResponse:
    """The page asking for a reason (and any other field of `form`)."""
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": title,
        "intro": intro,
        "targets": targets,
        "form": form,
        "submit_label": submit_label,
        "queryset": queryset,
        "action": action,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    return TemplateResponse(request, TEMPLATE, context)


def action_with_reason(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet,
    *,
    action: str,
    apply: Callable[[Any, str], object],
    title: str,
    done_label: str,
    noun: str,
    describe: Callable[[Any], str] = str,
) -> TemplateResponse | None:
    """Body of the admin action named `action`: ask for a reason, then `apply(obj, reason)` to
    each selected object, reporting each refusal (an ApplicationError) and the number done."""
    objects = list(queryset[: BATCH_MAX + 1])
    if len(objects) > BATCH_MAX:
        modeladmin.message_user(
            request, f"Select at most {BATCH_MAX} {noun} at a time. Nothing was changed.", messages.WARNING
        )
        return None
    form = ReasonForm(request.POST if "apply" in request.POST else None)
    if not form.is_valid():  # also the first visit, with an unbound form
        return reason_page(
            modeladmin,
            request,
            form=form,
            title=title,
            intro=f"{title}: give the reason. It is recorded with each of these {len(objects)} {noun}.",
            targets=[describe(obj) for obj in objects],
            submit_label=title,
            queryset=objects,
            action=action,
        )
    done = 0
    for obj in objects:
        try:
            apply(obj, form.cleaned_data["reason"])
        except ApplicationError as exc:
            modeladmin.message_user(request, f"{describe(obj)}: {exc.message}", messages.WARNING)
        else:
            done += 1
    modeladmin.message_user(request, f"{done_label} {done} {noun}.", messages.SUCCESS)
    return None
