def rule(event):
    return event.get("eventType") == "user.session.start"


def title(event):
    return f"Login {event.get('uuid')}"


def dedup(event):
    # One alert per event.
    return event.get("uuid")
