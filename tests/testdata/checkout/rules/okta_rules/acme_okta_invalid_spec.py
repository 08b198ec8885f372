def rule(event):
    return event.get("eventType") == "policy.lifecycle.delete"
