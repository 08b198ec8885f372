"""Okta MFA Factor Removed: an MFA factor was deactivated or reset for a user, all of a
user's factors were reset, or a factor type was switched off for the whole org."""

from panther_okta_helpers import okta_actor, okta_alert_context, okta_target_label, okta_targets

USER_FACTOR_DEACTIVATED = "user.mfa.factor.deactivate"
USER_FACTORS_RESET = "user.mfa.factor.reset_all"
ORG_FACTOR_DEACTIVATED = "system.mfa.factor.deactivate"
EVENT_TYPES = (USER_FACTOR_DEACTIVATED, USER_FACTORS_RESET, ORG_FACTOR_DEACTIVATED)


def _affected_user(event):
    users = okta_targets(event, "User")
    return users[0] if users else None


def _self_service(event):
    """True when the actor changed their own factors."""
    user = _affected_user(event)
    if user is None:
        return False
    actor_id = event.deep_get("actor", "id")
    actor_login = str(event.deep_get("actor", "alternateId", default="")).lower()
    return bool(
        (actor_id and actor_id == user.get("id"))
        or (actor_login and actor_login == str(user.get("alternateId") or "").lower())
    )


def rule(event):
    return bool(
        event.get("eventType") in EVENT_TYPES
        and event.deep_get("outcome", "result", default="SUCCESS") == "SUCCESS"
    )


def title(event):
    kind = event.get("eventType")
    actor = okta_actor(event)
    if kind == ORG_FACTOR_DEACTIVATED:
        factor = event.get("displayMessage") or "MFA factor deactivated"
        return f"Okta: {factor} for the whole org by {actor}"
    user = _affected_user(event)
    who = okta_target_label(user) if user is not None else "<UNKNOWN_USER>"
    if kind == USER_FACTORS_RESET:
        return f"Okta: all MFA factors reset for {who} by {actor}"
    reason = event.deep_get("outcome", "reason") or "MFA factor deactivated"
    return f"Okta: {reason} for {who} by {actor}"


def severity(event):
    kind = event.get("eventType")
    if kind == ORG_FACTOR_DEACTIVATED:
        return "HIGH"
    if _self_service(event):
        # Users replacing their own factor (new phone, new security key) is routine.
        return "LOW"
    return "HIGH" if kind == USER_FACTORS_RESET else "MEDIUM"


def alert_context(event):
    context = okta_alert_context(event)
    context["self_service"] = _self_service(event)
    return context
