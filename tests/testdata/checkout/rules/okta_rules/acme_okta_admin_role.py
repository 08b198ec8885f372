from acme_base_helpers import okta_context


def rule(event):
    if event.get("eventType") != "user.account.privilege.grant":
        return False
    granted = event.deep_get("debugContext", "debugData", "privilegeGranted", default="")
    return "super" in granted.lower()


def title(event):
    return f"{event.udm('actor_user')} was granted a super administrator role"


def alert_context(event):
    return okta_context(event)
