"""Okta MFA Push Bombing: a flood of denied Okta Verify pushes, or a push accepted after
several denials (MFA fatigue).

Denied pushes are counted per user in the detection cache; the count lives for
WINDOW_SECONDS after the latest denial. The rule matches
* each denial once the count reaches FLOOD_DENIALS (an attack in progress), and
* a successful MFA verification by push once MIN_DENIALS_BEFORE_ACCEPT denials preceded
  it (the user probably gave in); the count is then cleared.
The two cases deduplicate separately, so an acceptance opens its own, critical, alert.
"""

from panther_detection_helpers.caching import get_counter, increment_counter, reset_counter
from panther_okta_helpers import okta_actor, okta_alert_context, okta_cache_expiry, okta_count

WINDOW_SECONDS = 30 * 60
FLOOD_DENIALS = 5
MIN_DENIALS_BEFORE_ACCEPT = 3

DENY_PUSH = "user.mfa.okta_verify.deny_push"
MFA_VERIFICATIONS = ("user.authentication.auth_via_mfa", "user.authentication.verify")

# Set by rule() for the alert functions that run right after it.
DENIALS = 0
ACCEPTED = False


def _user_key(event):
    user = event.deep_get("actor", "id") or okta_actor(event)
    return f"Okta.MFA.PushDenials:{user}"


def _is_push_verification(event):
    if event.get("eventType") not in MFA_VERIFICATIONS:
        return False
    if event.deep_get("outcome", "result") != "SUCCESS":
        return False
    # Okta names the factor in debugData (OKTA_VERIFY_PUSH); when it is absent the
    # verification is still counted, since the denials already point at push.
    factor = str(event.deep_get("debugContext", "debugData", "factor", default="")).upper()
    return not factor or "PUSH" in factor


def rule(event):
    global DENIALS, ACCEPTED  # pylint: disable=global-statement
    DENIALS, ACCEPTED = 0, False

    if event.get("eventType") == DENY_PUSH:
        DENIALS = okta_count(
            increment_counter(
                _user_key(event), 1, epoch_seconds=okta_cache_expiry(event, WINDOW_SECONDS)
            )
        )
        return DENIALS >= FLOOD_DENIALS

    if _is_push_verification(event):
        DENIALS = okta_count(get_counter(_user_key(event)))
        if DENIALS >= MIN_DENIALS_BEFORE_ACCEPT:
            reset_counter(_user_key(event))
            ACCEPTED = True
            return True
    return False


def title(event):
    if ACCEPTED:
        return (
            f"Okta push accepted by {okta_actor(event)} after {DENIALS} denied pushes "
            "(possible MFA fatigue)"
        )
    return f"{okta_actor(event)} denied {DENIALS} Okta Verify pushes (possible MFA push bombing)"


def severity(event):
    return "CRITICAL" if ACCEPTED else "HIGH"


def dedup(event):
    return f"{okta_actor(event)}:{'accepted' if ACCEPTED else 'denied'}"


def alert_context(event):
    context = okta_alert_context(event)
    context["denied_pushes"] = DENIALS
    context["push_accepted"] = ACCEPTED
    return context
