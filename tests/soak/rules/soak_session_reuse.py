# A session seen a second time within SESSION_TTL seconds of its first
# sighting (event time) is an alert; the cache item expires at first sighting
# + SESSION_TTL, after which the next sighting starts over.
from panther_detection_helpers.caching import get_string_set, put_string_set

SESSION_TTL = 2 * 3600


def _session(event):
    return event.deep_get("authenticationContext", "externalSessionId", default="")


def rule(event):
    if event.get("eventType") != "user.session.access_admin_app":
        return False
    session = _session(event)
    if not session:
        return False
    key = "soak-session:" + session
    if get_string_set(key):
        return True
    put_string_set(
        key,
        [event.deep_get("actor", "alternateId", default="unknown")],
        epoch_seconds=event.event_time_epoch() + SESSION_TTL,
    )
    return False


def title(event):
    actor = event.deep_get("actor", "alternateId", default="unknown")
    return f"Session {_session(event)} reused by {actor}"


def dedup(event):
    return _session(event)
