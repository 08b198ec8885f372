"""Okta Login From New Country: a user signed in from a country they have not signed in
from before.

The countries of each user's successful sign-ins are kept in the detection cache for
HISTORY_SECONDS after the latest sign-in. A user's first recorded sign-in only sets the
baseline; later sign-ins from a country outside it match.
"""

from panther_detection_helpers.caching import add_to_string_set, get_string_set, put_string_set
from panther_okta_helpers import okta_actor, okta_alert_context, okta_cache_expiry, okta_string_set

HISTORY_SECONDS = 90 * 24 * 60 * 60

# Set by rule() for the alert functions that run right after it.
KNOWN_COUNTRIES = set()


def _country(event):
    return event.deep_get("client", "geographicalContext", "country")


def _history_key(event):
    user = event.deep_get("actor", "id") or okta_actor(event)
    return f"Okta.Login.Countries:{user}"


def rule(event):
    global KNOWN_COUNTRIES  # pylint: disable=global-statement
    KNOWN_COUNTRIES = set()

    if event.get("eventType") != "user.session.start":
        return False
    if event.deep_get("outcome", "result") != "SUCCESS":
        return False
    country = _country(event)
    if not country:
        return False

    key = _history_key(event)
    expiry = okta_cache_expiry(event, HISTORY_SECONDS)
    KNOWN_COUNTRIES = okta_string_set(get_string_set(key))
    if not KNOWN_COUNTRIES:
        put_string_set(key, [country], epoch_seconds=expiry)
        return False
    # Record the country either way; this also extends the history's lifetime.
    add_to_string_set(key, country, epoch_seconds=expiry)
    return country not in KNOWN_COUNTRIES


def title(event):
    return f"{okta_actor(event)} signed in to Okta from a new country: {_country(event)}"


def severity(event):
    # A new country reached through an anonymising proxy is the classic takeover shape.
    return "HIGH" if event.deep_get("securityContext", "isProxy") is True else "MEDIUM"


def dedup(event):
    return f"{okta_actor(event)}:{_country(event)}"


def alert_context(event):
    context = okta_alert_context(event)
    context["previous_countries"] = sorted(KNOWN_COUNTRIES)
    return context
