"""Okta Identity Provider Changed: an external identity provider (IdP) was created,
activated, changed, deactivated or deleted.

An attacker holding an admin session can add an IdP they control and then sign in as
any user through it (the "cross-tenant impersonation" technique of 2023)."""

from panther_okta_helpers import okta_actor, okta_alert_context, okta_target_label, okta_targets

LIFECYCLE_PREFIX = "system.idp.lifecycle."
SEVERITY_BY_ACTION = {"create": "HIGH", "activate": "HIGH", "update": "MEDIUM"}
PAST_TENSE = {
    "create": "created",
    "activate": "activated",
    "update": "updated",
    "deactivate": "deactivated",
    "delete": "deleted",
}


def _action(event):
    return str(event.get("eventType") or "")[len(LIFECYCLE_PREFIX):]


def rule(event):
    return bool(
        str(event.get("eventType") or "").startswith(LIFECYCLE_PREFIX)
        and event.deep_get("outcome", "result", default="SUCCESS") == "SUCCESS"
    )


def title(event):
    providers = okta_targets(event, "IdentityProvider") or okta_targets(event)
    name = okta_target_label(providers[0]) if providers else "<UNKNOWN_IDP>"
    action = PAST_TENSE.get(_action(event), _action(event))
    return f"Okta identity provider [{name}] {action} by {okta_actor(event)}"


def severity(event):
    return SEVERITY_BY_ACTION.get(_action(event), "LOW")


def alert_context(event):
    return okta_alert_context(event)
