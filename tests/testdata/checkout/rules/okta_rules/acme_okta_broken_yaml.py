def rule(event):
    return event.get("eventType") == "application.lifecycle.deactivate"
