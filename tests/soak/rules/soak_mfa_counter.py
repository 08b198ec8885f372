# Three failed MFA verifications of one user, each within COUNTER_TTL seconds
# (event time) of the previous one, are an alert; the counter then restarts.
from panther_detection_helpers.caching import increment_counter, reset_counter

COUNTER_TTL = 30 * 60
LIMIT = 3


def _actor(event):
    return event.deep_get("actor", "alternateId", default="unknown")


def rule(event):
    if event.get("eventType") != "user.authentication.auth_via_mfa":
        return False
    if event.deep_get("outcome", "result") != "FAILURE":
        return False
    key = "soak-mfa:" + _actor(event)
    failures = increment_counter(key, 1, epoch_seconds=event.event_time_epoch() + COUNTER_TTL)
    if failures >= LIMIT:
        reset_counter(key)
        return True
    return False


def title(event):
    return f"Repeated MFA failures for {_actor(event)}"


def dedup(event):
    return _actor(event)
