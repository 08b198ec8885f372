"""Okta User Reported Suspicious Activity: a user answered an Okta security notification
(new sign-in, new device, factor change) with "this wasn't me"."""

from panther_okta_helpers import okta_actor, okta_alert_context


def _reported(event, field, default="<UNKNOWN>"):
    return event.deep_get("debugContext", "debugData", field, default=default)


def rule(event):
    return event.get("eventType") == "user.account.report_suspicious_activity_by_enduser"


def title(event):
    return (
        f"{okta_actor(event)} reported suspicious Okta activity "
        f"[{_reported(event, 'suspiciousActivityEventType')}] "
        f"from {_reported(event, 'suspiciousActivityEventIp')}"
    )


def alert_context(event):
    context = okta_alert_context(event)
    context["reported_activity"] = {
        "event_type": _reported(event, "suspiciousActivityEventType"),
        "event_id": _reported(event, "suspiciousActivityEventId"),
        "ip": _reported(event, "suspiciousActivityEventIp"),
        "city": _reported(event, "suspiciousActivityEventCity"),
        "country": _reported(event, "suspiciousActivityEventCountry"),
        "browser": _reported(event, "suspiciousActivityBrowser"),
        "os": _reported(event, "suspiciousActivityOs"),
        "timestamp": _reported(event, "suspiciousActivityTimestamp"),
    }
    return context
