"""Okta Session Used From a New Network: one Okta session seen from a second IP address
on a different network (autonomous system), a sign of a stolen session cookie.

A session is identified by authenticationContext.externalSessionId, or by
debugContext.debugData.dtHash when Okta leaves the former out. The IPs ("ip:<addr>") and
AS numbers ("asn:<n>") a session was used from are kept in the detection cache for
SESSION_SECONDS. A new IP inside an AS the session already used is recorded without an
alert: it is ordinary address churn (DHCP, mobile networks, IPv4/IPv6 dual stack).
"""

from panther_detection_helpers.caching import add_to_string_set, get_string_set, put_string_set
from panther_okta_helpers import okta_actor, okta_alert_context, okta_cache_expiry, okta_string_set

SESSION_SECONDS = 24 * 60 * 60
SESSION_EVENTS = (
    "user.session.start",
    "user.authentication.sso",
    "user.session.access_admin_app",
)

# Set by rule() for the alert functions that run right after it.
SEEN_BEFORE = set()


def _session_id(event):
    for path in (
        ("authenticationContext", "externalSessionId"),
        ("debugContext", "debugData", "dtHash"),
    ):
        value = event.deep_get(*path)
        if value and str(value).lower() != "unknown":
            return str(value)
    return None


def _network_entries(event):
    entries = [f"ip:{event.deep_get('client', 'ipAddress')}"]
    asn = event.deep_get("securityContext", "asNumber")
    if asn not in (None, ""):
        entries.append(f"asn:{asn}")
    return entries


def rule(event):
    global SEEN_BEFORE  # pylint: disable=global-statement
    SEEN_BEFORE = set()

    if event.get("eventType") not in SESSION_EVENTS:
        return False
    if event.deep_get("outcome", "result", default="SUCCESS") != "SUCCESS":
        return False
    session = _session_id(event)
    if session is None or not event.deep_get("client", "ipAddress"):
        return False

    key = f"Okta.Session.Networks:{session}"
    expiry = okta_cache_expiry(event, SESSION_SECONDS)
    entries = _network_entries(event)
    SEEN_BEFORE = okta_string_set(get_string_set(key))
    if not SEEN_BEFORE:
        put_string_set(key, entries, epoch_seconds=expiry)
        return False
    if entries[0] in SEEN_BEFORE:
        return False
    add_to_string_set(key, entries, epoch_seconds=expiry)
    # Same AS as before: a new address on a network this session already used.
    return not any(entry in SEEN_BEFORE for entry in entries[1:])


def title(event):
    previous = sorted(e[3:] for e in SEEN_BEFORE if e.startswith("ip:"))
    return (
        f"Okta session of {okta_actor(event)} used from new IP "
        f"{event.deep_get('client', 'ipAddress')} (earlier: {', '.join(previous) or 'none'})"
    )


def dedup(event):
    return f"{okta_actor(event)}:{_session_id(event)}"


def alert_context(event):
    context = okta_alert_context(event)
    context["session_id"] = _session_id(event)
    context["previous_networks"] = sorted(SEEN_BEFORE)
    return context
