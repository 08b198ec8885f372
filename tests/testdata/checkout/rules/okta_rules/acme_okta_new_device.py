def rule(event):
    return event.get("eventType") == "device.enrollment.create"


def title(event):
    return "New device enrolled"
