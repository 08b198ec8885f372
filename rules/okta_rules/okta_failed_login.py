"""Okta Failed Login: failed sign-ins to Okta, grouped per source IP address."""

from panther_okta_helpers import okta_alert_context

# Accounts whose failures change the alert's severity, compared with the login's local
# part (the text before "@", after any "DOMAIN\" prefix), ignoring case.
PRIVILEGED_ACCOUNTS = frozenset({"admin", "administrator"})
TEST_ACCOUNTS = frozenset({"test"})


def _login(event):
    # The original author wrote "alternateID" (capital ID) where Okta sends
    # "alternateId". The spelling is kept on purpose: event lookups ignore case, so it
    # still finds the field, and the unit tests pin that behaviour down.
    return event.deep_get("actor", "alternateID")


def _local_part(login):
    name = str(login or "").strip().lower()
    name = name.rsplit("\\", 1)[-1]
    return name.split("@", 1)[0]


def rule(event):
    return bool(
        event.get("eventType") == "user.session.start"
        and event.deep_get("outcome", "result") == "FAILURE"
    )


def title(event):
    return f"Multiple Failed Logins for {_login(event)}"


def severity(event):
    account = _local_part(_login(event))
    if account in PRIVILEGED_ACCOUNTS:
        return "CRITICAL"
    if account in TEST_ACCOUNTS:
        return "INFO"
    return "MEDIUM"


def dedup(event):
    return str(event.deep_get("client", "ipAddress", default="<UNKNOWN_IP>"))


def alert_context(event):
    return okta_alert_context(event)
