# Failed sign-ins per user, thresholded by the spec (4 within 60 minutes).
def rule(event):
    return (
        event.get("eventType") == "user.session.start"
        and event.deep_get("outcome", "result") == "FAILURE"
    )


def title(event):
    actor = event.deep_get("actor", "alternateId", default="unknown")
    ip = event.deep_get("client", "ipAddress", default="unknown")
    return f"Failed logins for {actor} (first from {ip})"


def dedup(event):
    return event.deep_get("actor", "alternateId", default="unknown")


def severity(event):
    if event.deep_get("actor", "alternateId", default="").startswith("admin"):
        return "CRITICAL"
    return "DEFAULT"
