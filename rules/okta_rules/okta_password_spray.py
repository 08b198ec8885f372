"""Okta Password Spray: one source IP failing to sign in to many different accounts.

Each failed sign-in adds the attempted login to a per-IP set in the detection cache.
The set lives for WINDOW_SECONDS after the latest failure. Once it holds
MIN_DISTINCT_ACCOUNTS logins, every further failure from that IP matches; the rule's
Threshold then asks for several such matches before an alert opens.
"""

from panther_detection_helpers.caching import add_to_string_set, get_string_set
from panther_okta_helpers import (
    okta_actor,
    okta_alert_context,
    okta_cache_expiry,
    okta_string_set,
)

WINDOW_SECONDS = 60 * 60
MIN_DISTINCT_ACCOUNTS = 5
HIGH_DISTINCT_ACCOUNTS = 15

# Logins seen failing from the current event's IP; set by rule(), read by the alert
# functions that run right after it.
ACCOUNTS_TRIED = set()


def _source_ip(event):
    return event.deep_get("client", "ipAddress")


def rule(event):
    global ACCOUNTS_TRIED  # pylint: disable=global-statement
    ACCOUNTS_TRIED = set()

    if event.get("eventType") != "user.session.start":
        return False
    if event.deep_get("outcome", "result") != "FAILURE":
        return False
    source_ip = _source_ip(event)
    if not source_ip:
        return False

    key = f"Okta.PasswordSpray:{source_ip}"
    accounts = add_to_string_set(
        key, okta_actor(event).lower(), epoch_seconds=okta_cache_expiry(event, WINDOW_SECONDS)
    )
    if accounts is None:
        accounts = get_string_set(key)
    ACCOUNTS_TRIED = okta_string_set(accounts)
    return len(ACCOUNTS_TRIED) >= MIN_DISTINCT_ACCOUNTS


def title(event):
    return (
        f"Okta password spray from {_source_ip(event)}: failed sign-ins to "
        f"{len(ACCOUNTS_TRIED)} different accounts"
    )


def severity(event):
    return "HIGH" if len(ACCOUNTS_TRIED) >= HIGH_DISTINCT_ACCOUNTS else "MEDIUM"


def dedup(event):
    return str(_source_ip(event) or "<UNKNOWN_IP>")


def alert_context(event):
    context = okta_alert_context(event)
    context["accounts_tried"] = sorted(ACCOUNTS_TRIED)
    return context
