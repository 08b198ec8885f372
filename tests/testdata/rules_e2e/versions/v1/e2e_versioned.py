# e2e_versioned version one
def rule(event):
    return event.get("eventType") == "versioned.v1"
