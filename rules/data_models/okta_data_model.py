"""Methods of the Standard.Okta.SystemLog data model."""

import panther_event_type_helpers as event_type
from panther_base_helpers import deep_get

# Okta event types with one normalised meaning whatever their outcome.
_EVENT_TYPES = {
    "user.session.end": event_type.SUCCESSFUL_LOGOUT,
    "user.mfa.factor.activate": event_type.MFA_ENABLED,
    "user.mfa.factor.unsuspend": event_type.MFA_ENABLED,
    "user.mfa.factor.reset_all": event_type.MFA_RESET,
    "system.mfa.factor.deactivate": event_type.ADMIN_MFA_DISABLED,
    "user.account.privilege.grant": event_type.ADMIN_ROLE_ASSIGNED,
    "group.privilege.grant": event_type.ADMIN_ROLE_ASSIGNED,
    "user.lifecycle.create": event_type.USER_ACCOUNT_CREATED,
    "user.lifecycle.delete.initiated": event_type.USER_ACCOUNT_DELETED,
    "user.lifecycle.delete.completed": event_type.USER_ACCOUNT_DELETED,
    "user.account.update_profile": event_type.USER_ACCOUNT_MODIFIED,
    "group.lifecycle.create": event_type.USER_GROUP_CREATED,
    "group.profile.update": event_type.USER_GROUP_MODIFIED,
    "group.lifecycle.delete": event_type.USER_GROUP_DELETED,
}


def get_event_type(event):
    """Map an Okta eventType (and, for sign-ins and factor changes, its outcome) onto a
    panther_event_type_helpers value; None when the event has no normalised meaning."""
    okta_type = event.get("eventType")
    result = deep_get(event, "outcome", "result")

    if okta_type == "user.session.start":
        if result == "SUCCESS":
            return event_type.SUCCESSFUL_LOGIN
        if result == "FAILURE":
            return event_type.FAILED_LOGIN
        return None

    if okta_type in ("user.mfa.factor.deactivate", "user.mfa.factor.suspend"):
        # A user (or an admin for them) resetting a factor re-enrolls it; anything else
        # leaves the account with one factor fewer.
        reason = str(deep_get(event, "outcome", "reason", default=""))
        return event_type.MFA_RESET if reason.startswith("User reset") else event_type.MFA_DISABLED

    return _EVENT_TYPES.get(okta_type)


def get_actor_user(event):
    """The actor's login (actor.alternateId), else its display name, else "Unknown User"."""
    login = deep_get(event, "actor", "alternateId")
    if login and login != "unknown":
        return login
    return deep_get(event, "actor", "displayName", default="Unknown User")
