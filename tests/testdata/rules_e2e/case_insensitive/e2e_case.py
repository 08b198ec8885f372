def _login(event):
    # Written as "alternateID"; Okta sends "alternateId".
    return event.deep_get("actor", "alternateID")


def rule(event):
    return _login(event) == "jane.doe@acme.com"


def title(event):
    return f"Login by {_login(event)}"
