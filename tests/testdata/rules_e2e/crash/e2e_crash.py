import os


def rule(event):
    if event.get("eventType") == "crash.now":
        os.abort()
    return False
