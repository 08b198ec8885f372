# Account lockouts as signals (CreateAlert: false), per user.
def rule(event):
    return event.get("eventType") == "user.account.lock"


def title(event):
    return f"Account locked: {event.deep_get('actor', 'alternateId', default='unknown')}"


def dedup(event):
    return event.deep_get("actor", "alternateId", default="unknown")
