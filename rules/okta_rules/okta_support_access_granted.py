"""Okta Support Access Granted: an admin let Okta Support sign in to the org as an
administrator (impersonation), extended that access, or Okta Support started using it."""

from panther_okta_helpers import okta_actor, okta_alert_context

GRANTED = "user.session.impersonation.grant"
EXTENDED = "user.session.impersonation.extend"
STARTED = "user.session.impersonation.initiate"
EVENT_TYPES = (GRANTED, EXTENDED, STARTED)


def rule(event):
    return event.get("eventType") in EVENT_TYPES


def title(event):
    kind = event.get("eventType")
    if kind == STARTED:
        return f"Okta Support started an impersonation session ({okta_actor(event)})"
    verb = "extended" if kind == EXTENDED else "granted"
    return f"Okta Support access {verb} by {okta_actor(event)}"


def severity(event):
    return "HIGH" if event.get("eventType") == STARTED else "MEDIUM"


def alert_context(event):
    return okta_alert_context(event)
