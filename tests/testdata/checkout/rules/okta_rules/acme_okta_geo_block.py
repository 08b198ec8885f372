import json

import acme_geoip_tables

BLOCKED = set(acme_geoip_tables.BLOCKED_COUNTRIES)


def rule(event):
    country = event.deep_get("client", "geographicalContext", "country", default="")
    return country in BLOCKED


def alert_context(event):
    return json.loads(json.dumps({"country": event.deep_get("client", "geographicalContext")}))
