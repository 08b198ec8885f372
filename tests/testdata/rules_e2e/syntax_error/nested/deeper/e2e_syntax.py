"""A rule with a syntax error on line 5."""


def rule(event):
    return event.get("eventType") == "x" and (
