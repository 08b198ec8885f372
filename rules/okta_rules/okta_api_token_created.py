"""Okta API Token Created: someone created an Okta API (SSWS) token.

An API token acts with the full permissions of the admin who created it and does not
expire while it is used, which makes it a favourite persistence mechanism."""

from panther_okta_helpers import okta_actor, okta_alert_context, okta_target_label, okta_targets


def _token_name(event):
    tokens = okta_targets(event, "Token") or okta_targets(event)
    return okta_target_label(tokens[0]) if tokens else "<UNKNOWN_TOKEN>"


def rule(event):
    return bool(
        event.get("eventType") == "system.api_token.create"
        and event.deep_get("outcome", "result") == "SUCCESS"
    )


def title(event):
    return f"Okta API token [{_token_name(event)}] created by {okta_actor(event)}"


def severity(event):
    # Created through an anonymising proxy or while ThreatInsight suspected the request.
    proxied = event.deep_get("securityContext", "isProxy") is True
    suspected = (
        str(event.deep_get("debugContext", "debugData", "threatSuspected", default="")).lower()
        == "true"
    )
    return "HIGH" if proxied or suspected else "MEDIUM"


def alert_context(event):
    return okta_alert_context(event)
