"""Okta Admin Role Granted: an administrator role was given to a user or to a group."""

from panther_okta_helpers import okta_actor, okta_alert_context, okta_target_label, okta_targets

GRANT_EVENTS = ("user.account.privilege.grant", "group.privilege.grant")

# Role-name fragments (lower case) and the severity of granting them, most severe first.
# Any other admin or custom role is MEDIUM.
ROLE_SEVERITY = (
    ("super admin", "CRITICAL"),
    ("organization admin", "HIGH"),
    ("org admin", "HIGH"),
    ("read only", "LOW"),
    ("read-only", "LOW"),
    ("report admin", "LOW"),
)
SEVERITY_ORDER = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _roles(event):
    """The roles granted, from debugData.privilegeGranted ("Role A, Role B"), else from
    the role entries of target."""
    granted = event.deep_get("debugContext", "debugData", "privilegeGranted", default="")
    roles = [role.strip() for role in str(granted).split(",") if role.strip()]
    if not roles:
        roles = [
            str(target.get("displayName"))
            for target in okta_targets(event)
            if "ROLE" in str(target.get("type") or "").upper() and target.get("displayName")
        ]
    return roles


def _grantee(event):
    for target in okta_targets(event):
        if "ROLE" not in str(target.get("type") or "").upper():
            return target
    return None


def rule(event):
    return bool(
        event.get("eventType") in GRANT_EVENTS
        and event.deep_get("outcome", "result") == "SUCCESS"
    )


def title(event):
    grantee = _grantee(event)
    who = okta_target_label(grantee) if grantee is not None else "<UNKNOWN_TARGET>"
    kind = "group" if event.get("eventType") == "group.privilege.grant" else "user"
    roles = ", ".join(_roles(event)) or "<UNKNOWN_ROLE>"
    return f"Okta admin role [{roles}] granted to {kind} {who} by {okta_actor(event)}"


def severity(event):
    worst = None
    for role in _roles(event):
        name = role.lower()
        level = next((sev for fragment, sev in ROLE_SEVERITY if fragment in name), "MEDIUM")
        if worst is None or SEVERITY_ORDER.index(level) > SEVERITY_ORDER.index(worst):
            worst = level
    return worst or "MEDIUM"


def alert_context(event):
    context = okta_alert_context(event)
    context["roles_granted"] = _roles(event)
    return context
