# A rule that fails on the events it looks at: rule errors, grouped per
# exception type into RULE_ERROR alerts.
def rule(event):
    if event.get("eventType") != "app.oauth2.token.grant":
        return False
    if event.deep_get("client", "ipAddress", default="").endswith(".1"):
        return None  # not a bool: FunctionReturnTypeError
    return event["target"][0]["id"] == "never"  # these events have no target: KeyError
