import acme_vendor_helpers


def rule(event):
    if not event.get("eventType", "").startswith("user.session"):
        return False
    return acme_vendor_helpers.is_known_bad(event.deep_get("client", "ipAddress", default=""))
