"""Okta ThreatInsight Detection: Okta ThreatInsight judged a request malicious
(password spraying, credential stuffing, sign-ins from known-bad infrastructure)."""

import json

from panther_okta_helpers import okta_alert_context

SEVERITY_ORDER = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _detections(event):
    """debugData.threatDetections: a JSON object, sent as a string, mapping each
    detection name to a severity, e.g. '{"Password Spray":"HIGH"}'."""
    raw = event.deep_get("debugContext", "debugData", "threatDetections")
    if not raw:
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return {}
    if not hasattr(raw, "items"):
        return {}
    return {str(name): str(level).upper() for name, level in raw.items()}


def _blocked(event):
    return event.deep_get("outcome", "result") == "DENY"


def rule(event):
    return event.get("eventType") == "security.threat.detected"


def title(event):
    names = ", ".join(_detections(event)) or event.deep_get(
        "outcome", "reason", default="suspicious activity"
    )
    verdict = "blocked" if _blocked(event) else "allowed"
    source = event.deep_get("client", "ipAddress", default="<UNKNOWN_IP>")
    return f"Okta ThreatInsight: {names} from {source} ({verdict})"


def severity(event):
    if _blocked(event):
        # ThreatInsight enforced its verdict; the request never got through.
        return "LOW"
    levels = [level for level in _detections(event).values() if level in SEVERITY_ORDER]
    return max(levels, key=SEVERITY_ORDER.index) if levels else "MEDIUM"


def dedup(event):
    return str(event.deep_get("client", "ipAddress", default="<UNKNOWN_IP>"))


def alert_context(event):
    context = okta_alert_context(event)
    context["threat_detections"] = _detections(event)
    return context
