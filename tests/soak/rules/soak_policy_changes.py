# Policy updates per policy, thresholded by the spec (2 within a day).
def _policy(event):
    targets = event.get("target") or []
    for target in targets:
        if target.get("type") == "PolicyEntity":
            return target.get("id", "unknown")
    return "unknown"


def rule(event):
    return event.get("eventType") == "policy.lifecycle.update"


def title(event):
    return f"Policy {_policy(event)} changed repeatedly"


def dedup(event):
    return _policy(event)
