def actor_login(event):
    actor = event.get("actor") or {}
    return actor.get("alternateId") or actor.get("displayName") or "unknown"


def okta_context(event):
    return {
        "actor": actor_login(event),
        "event_type": event.get("eventType"),
        "ip": (event.get("client") or {}).get("ipAddress"),
    }
