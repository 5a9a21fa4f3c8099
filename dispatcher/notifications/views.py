"""The notification settings page (/settings/notifications): email at once, in the digest,
or off, and an optional Slack incoming-webhook URL (kept sealed, never shown back)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, RadioField, SelectChoice
from wtforms.validators import Optional, ValidationError

from dispatcher.extensions import db
from dispatcher.notifications.prefs import EmailMode, prefs_of, save_prefs
from dispatcher.notifications.slack import check_slack_url

bp = Blueprint("notifications", __name__)

EMAIL_CHOICES = [
    SelectChoice(EmailMode.DIGEST.value, "In my daily digest"),
    SelectChoice(EmailMode.IMMEDIATE.value, "At once (one mail per batch, within a minute)"),
    SelectChoice(EmailMode.OFF.value, "Not by email"),
]


class NotificationForm(FlaskForm):
    email = RadioField("Email me about deliveries, questions and failures", choices=EMAIL_CHOICES)
    slack_url = PasswordField(
        "Slack incoming-webhook URL",
        validators=[Optional()],
        description="Also post them to Slack. Leave empty to keep the one saved.",
    )
    remove_slack = BooleanField("Stop posting to Slack")

    def validate_slack_url(self, field: PasswordField) -> None:
        if field.data:
            try:
                field.data = check_slack_url(field.data)
            except ValueError as exc:
                raise ValidationError(str(exc)) from None


@bp.route("/settings/notifications", methods=["GET", "POST"])
@login_required
def settings():
    prefs = prefs_of(current_user.id)
    form = NotificationForm(data={"email": prefs.email.value} if request.method == "GET" else None)
    if form.validate_on_submit():
        slack = "" if form.remove_slack.data else (form.slack_url.data or None)
        save_prefs(current_user.id, EmailMode(form.email.data), slack)
        db.session.commit()
        flash("Notification settings saved", "success")
        return redirect(url_for("notifications.settings"), code=303)
    status = 400 if request.method == "POST" else 200
    return render_template(
        "notifications/settings.html",
        form=form,
        has_slack=bool(prefs.slack_url),
        digest_hour=current_user.digest_hour,
    ), status
