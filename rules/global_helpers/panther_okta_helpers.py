"""Helpers for detections on Okta System Log events (log type ``Okta.SystemLog``).

``okta_alert_context`` returns the keys of Panther's helper of that name except its
"PantherFlow Investigation" query, which searches a data lake pantherd does not have, so
Panther's public Okta rules run on pantherd with this module in place of theirs. The
other functions are small conveniences used by pantherd's own Okta rules.
"""

import json
import time
from collections.abc import Mapping
from typing import Any, List, Optional, Set

# Each alert-context key and the event field it copies. Okta sends camelCase field names;
# the event object ignores case, so either spelling finds them.
_CONTEXT_FIELDS = (
    ("event_type", "eventType", ""),
    ("severity", "severity", ""),
    ("actor", "actor", {}),
    ("client", "client", {}),
    ("request", "request", {}),
    ("outcome", "outcome", {}),
    ("target", "target", []),
    ("debug_context", "debugContext", {}),
    ("authentication_context", "authenticationContext", {}),
    ("security_context", "securityContext", {}),
    ("ips", "p_any_ip_addresses", []),
)


def _plain(value: Any) -> Any:
    """Copy read-only event containers into plain dicts and lists, so the context
    serialises with the standard json module whatever the host's wrappers are."""
    if isinstance(value, (str, bytes, int, float, bool)) or value is None:
        return value
    if isinstance(value, Mapping) or (hasattr(value, "keys") and hasattr(value, "get")):
        return {str(key): _plain(value[key]) for key in value.keys()}
    if hasattr(value, "__iter__"):
        return [_plain(item) for item in value]
    return value


def okta_alert_context(event: Any) -> dict:
    """The standard context for Okta alerts: who did what, from where, to whom.

    Keys: event_type, severity, actor, client, request, outcome, target, debug_context,
    authentication_context, security_context, ips. Panther's helper also adds a
    "PantherFlow Investigation" query for its data lake; pantherd has no data lake to
    run it on, so the key is left out."""
    context = {}
    for context_key, field, empty in _CONTEXT_FIELDS:
        value = event.get(field)
        context[context_key] = _plain(value) if value is not None else empty
    return context


def okta_actor(event: Any) -> str:
    """The actor's login (``actor.alternateId``), else its display name."""
    for field in ("alternateId", "displayName", "id"):
        value = event.deep_get("actor", field)
        if value and value != "unknown":
            return str(value)
    return "<UNKNOWN_ACTOR>"


def okta_targets(event: Any, target_type: Optional[str] = None) -> List[Any]:
    """The entries of ``target`` (which Okta may send as null), optionally only those
    whose ``type`` equals ``target_type``, ignoring case."""
    targets = event.get("target") or []
    wanted = target_type.lower() if target_type else None
    return [
        target
        for target in targets
        if target is not None
        and (wanted is None or str(target.get("type") or "").lower() == wanted)
    ]


def okta_target_label(target: Any) -> str:
    """``Display Name <alternateId>`` for one target entry, with whatever parts exist."""
    name = target.get("displayName") or ""
    login = target.get("alternateId") or ""
    if login in ("", "unknown") or login == name:
        return name or str(target.get("id") or "<UNKNOWN_TARGET>")
    return f"{name} <{login}>" if name else login


def okta_cache_expiry(event: Any, seconds: int) -> int:
    """Absolute epoch seconds for a cache entry that must live ``seconds`` after this
    event. It counts from the event's time, but never from a moment earlier than now, so
    replaying old events does not create entries that are already expired."""
    try:
        event_epoch = int(event.event_time_epoch() or 0)
    except (AttributeError, TypeError, ValueError):
        event_epoch = 0
    return max(event_epoch, int(time.time())) + int(seconds)


def okta_string_set(value: Any) -> Set[str]:
    """Normalise what a string-set cache call returned into a Python set of strings.

    The real cache returns a set; a unit-test mock returns a string holding a JSON list
    (``'["US", "CA"]'``), or an empty string. ``None`` and booleans count as empty."""
    if value is None or isinstance(value, bool):
        return set()
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return set()
        try:
            value = json.loads(text)
        except ValueError:
            return {text}
        if isinstance(value, str):
            return {value}
    if isinstance(value, Mapping):
        return {str(key) for key in value}
    try:
        return {str(item) for item in value if item is not None}
    except TypeError:
        return {str(value)}


def okta_count(value: Any) -> int:
    """Normalise what a counter cache call returned (an int, a Decimal, or a mock's
    string such as ``"4"``) into an int; anything unreadable counts as 0."""
    if isinstance(value, bool):
        return int(value)
    try:
        return int(float(str(value).strip()))
    except (TypeError, ValueError):
        return 0
