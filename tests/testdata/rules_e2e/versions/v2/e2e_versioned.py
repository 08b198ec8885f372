# e2e_versioned version two
def rule(event):
    return event.get("eventType") == "versioned.v2"
