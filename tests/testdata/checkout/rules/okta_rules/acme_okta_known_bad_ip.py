from acme_vendor_helpers import is_known_bad


def rule(event):
    return is_known_bad(event.deep_get("client", "ipAddress", default=""))
