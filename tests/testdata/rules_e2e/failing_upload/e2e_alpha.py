def rule(event):
    # Version 2 of Alpha: also matches alpha.event2.
    return event.get("eventType") in ("alpha.event", "alpha.event2")


def title(event):
    return f"Alpha for {event.deep_get('actor', 'alternateId', default='<unknown>')}"
