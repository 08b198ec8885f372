def rule(event):
    return event.get("eventType") == "user.session.start"


def title(event):
    return f"Suppressed {event.get('uuid')}"


def dedup(event):
    return event.get("uuid")


def destinations(event):
    # Panther: an empty list suppresses delivery.
    return []
