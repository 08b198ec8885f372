# Alerts on the second sighting of a session (user and IP) within 30 minutes
# of event time: the crash test's session-tracking rule.
from panther_detection_helpers.caching import get_string_set, put_string_set


def _session(event):
    return "session:{}:{}".format(
        event.deep_get("actor", "alternateId", default=""),
        event.deep_get("client", "ipAddress", default=""),
    )


def rule(event):
    key = _session(event)
    if get_string_set(key):
        return True
    put_string_set(key, ["seen"], epoch_seconds=1800)
    return False


def title(event):
    return "Second sighting of " + _session(event)


def dedup(event):
    return _session(event)
