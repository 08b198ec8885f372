# Counts every sign-in of a user and alerts on each 25th: the crash test's
# counter rule. The count is in the title and dedup string, so a count made
# twice (or lost) changes which events alert.
from panther_detection_helpers.caching import get_counter, increment_counter


def _key(event):
    return "signins:" + event.deep_get("actor", "alternateId", default="")


def rule(event):
    return increment_counter(_key(event), 1) % 25 == 0


def title(event):
    return "{} reached {} sign-ins".format(_key(event), get_counter(_key(event)))


def dedup(event):
    return title(event)
