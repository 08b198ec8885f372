def rule(event):
    return event.get("count", 0) > 2
