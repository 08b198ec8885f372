def rule(event):
    return event.get("eventType") == "failing.event"


def title(event):
    # The test's Log has no "target" key: a KeyError.
    return f"Failing for {event['target']}"
