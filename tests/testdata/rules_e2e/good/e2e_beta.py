def rule(event):
    return event.get("eventType") == "beta.event"
