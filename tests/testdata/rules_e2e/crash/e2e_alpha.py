def rule(event):
    return event.get("eventType") == "alpha.event"


def title(event):
    return f"Alpha for {event.deep_get('actor', 'alternateId', default='<unknown>')}"
