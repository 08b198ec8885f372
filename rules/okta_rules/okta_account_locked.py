"""Okta Account Locked: a user account was locked out after too many failed sign-ins."""

from panther_okta_helpers import okta_actor, okta_alert_context

LOCK_EVENTS = ("user.account.lock", "user.account.lock.limit")


def rule(event):
    return event.get("eventType") in LOCK_EVENTS


def title(event):
    reason = event.get("displayMessage") or "account locked"
    return f"Okta account {okta_actor(event)} locked: {reason}"


def severity(event):
    # The failures came through an anonymising proxy, or ThreatInsight flagged them.
    proxied = event.deep_get("securityContext", "isProxy") is True
    suspected = (
        str(event.deep_get("debugContext", "debugData", "threatSuspected", default="")).lower()
        == "true"
    )
    return "MEDIUM" if proxied or suspected else "LOW"


def dedup(event):
    return okta_actor(event)


def alert_context(event):
    return okta_alert_context(event)
