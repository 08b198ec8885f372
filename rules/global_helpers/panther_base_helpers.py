"""General-purpose helpers shared by every pantherd detection.

This module is imported under its GlobalID, ``panther_base_helpers``, and keeps the
names and call signatures that Panther-format detections expect from a module of that
name, so rules written for Panther run here unchanged:

* nested lookups: ``deep_get``, ``deep_walk``, ``get_val_from_list``,
  ``key_value_list_to_dict``, ``listify``
* networks and patterns: ``is_ip_in_network``, ``pattern_match``,
  ``pattern_match_list``, ``EMAIL_REGEX``
* time: ``panther_nanotime_to_python_datetime``, ``golang_nanotime_to_python_datetime``,
  ``resolve_timestamp_string``, ``nano_to_micro``, ``time_delta``, ``add_parse_delay``
* alerting: ``pantherflow_investigation``, ``SEVERITY_LEVELS``,
  ``severity_greater_than``, ``PantherUnexpectedAlert``, ``dbprint``
* indicators: ``defang_ioc``, ``ioc_match``

Only the standard library and python-dateutil are used.
"""

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from fnmatch import fnmatch
from ipaddress import ip_address, ip_network
from typing import Any, Iterable, List, Optional

from dateutil import parser as dateutil_parser


class PantherUnexpectedAlert(Exception):
    """Raised by a detection that meets a situation its author ruled out."""


# --------------------------------------------------------------------------------------
# Container tests
#
# Events reach rules wrapped in read-only, case-insensitive containers. They behave like
# Mapping / Sequence, but a host is free to implement them without registering with
# collections.abc, so the tests below also accept look-alikes.
# --------------------------------------------------------------------------------------


def _is_mapping(value: Any) -> bool:
    if isinstance(value, Mapping):
        return True
    return hasattr(value, "keys") and hasattr(value, "get") and hasattr(value, "__getitem__")


def _is_sequence(value: Any) -> bool:
    if isinstance(value, (str, bytes, bytearray)) or _is_mapping(value):
        return False
    if isinstance(value, (Sequence, set, frozenset)):
        return True
    return hasattr(value, "__iter__") and hasattr(value, "__len__")


# --------------------------------------------------------------------------------------
# Nested lookups
# --------------------------------------------------------------------------------------


def deep_get(dictionary: Any, *keys: Any, default: Any = None) -> Any:
    """Follow ``keys`` through nested mappings and return what is found there.

    ``default`` is returned when a key is absent, when an intermediate value is not a
    mapping, or when the value found is ``None``. Falsy values such as ``""``, ``0`` and
    ``False`` are returned as they are. Lookups are as case-sensitive as the container:
    on an event object they ignore case.
    """
    current = dictionary
    for key in keys:
        if not _is_mapping(current):
            return default
        current = current.get(key)
        if current is None:
            return default
    return default if current is None else current


_NOTHING = object()


def _holds_only_empty_lists(value: Any) -> bool:
    return _is_sequence(value) and all(_holds_only_empty_lists(item) for item in value)


def _walk(obj: Any, keys: tuple, return_val: str) -> Any:
    if not keys:
        return _NOTHING if _holds_only_empty_lists(obj) else obj
    if _is_mapping(obj):
        child = obj.get(keys[0])
        if child is None:
            return _NOTHING
        return _walk(child, keys[1:], return_val)
    if not _is_sequence(obj):
        return _NOTHING

    collected: List[Any] = []
    for element in obj:
        result = _walk(element, keys, return_val)
        if result is _NOTHING or result is None:
            continue
        for value in result if _is_sequence(result) else (result,):
            if value is not None and value not in collected:
                collected.append(value)
    if not collected:
        return _NOTHING
    if return_val == "first":
        return collected[0]
    if return_val == "last":
        return collected[-1]
    return collected[0] if len(collected) == 1 else collected


def deep_walk(obj: Any, *keys: Any, default: Any = None, return_val: str = "all") -> Any:
    """Like ``deep_get``, but also descends into every element of the lists it meets.

    Values gathered from lists are de-duplicated, keeping their first-seen order.
    ``return_val`` selects what comes back once a list has been crossed: ``"first"``,
    ``"last"`` or ``"all"`` (a single value when exactly one was found, else a list).
    ``default`` is returned when nothing is found or only empty lists are.
    """
    result = _walk(obj, keys, return_val)
    return default if result is _NOTHING else result


def get_val_from_list(
    list_of_dicts: Optional[Iterable[Any]], return_field_key: Any, field_key: Any, field_value: Any
) -> set:
    """Return the set of ``item[return_field_key]`` over the items whose ``field_key``
    equals ``field_value``. The set is empty when no item matches."""
    values = set()
    for item in list_of_dicts or ():
        if _is_mapping(item) and item.get(field_key) == field_value:
            values.add(item.get(return_field_key))
    return values


def key_value_list_to_dict(list_objects: Iterable[Any], key: Any, value: Any) -> dict:
    """Turn ``[{"name": "a", "val": 1}, ...]`` into ``{"a": 1, ...}``."""
    return {item[key]: item[value] for item in list_objects}


def listify(maybe_list: Any) -> Any:
    """Return ``maybe_list`` if it is a list-like collection, else wrap it in a list.

    Strings, bytes and mappings count as single values."""
    if _is_sequence(maybe_list):
        return maybe_list
    return [maybe_list]


# --------------------------------------------------------------------------------------
# Networks and patterns
# --------------------------------------------------------------------------------------

EMAIL_REGEX = re.compile(r"[\w.+%-]+@[\w.-]+\.[a-zA-Z]{2,}")


def is_ip_in_network(ip_addr: str, networks: Iterable[str]) -> bool:
    """True when ``ip_addr`` lies in any of the CIDR blocks in ``networks``.

    Host bits in a block are tolerated (``10.1.2.3/8`` means ``10.0.0.0/8``), and an
    IPv4 address is simply not inside an IPv6 block."""
    address = ip_address(str(ip_addr).strip())
    return any(address in ip_network(str(block).strip(), strict=False) for block in networks)


def pattern_match(string_to_match: str, pattern: str) -> bool:
    """Shell-style glob match (``*``, ``?``, ``[seq]``)."""
    return fnmatch(string_to_match, pattern)


def pattern_match_list(string_to_match: str, patterns: Iterable[str]) -> bool:
    """True when ``string_to_match`` matches at least one glob in ``patterns``."""
    return any(fnmatch(string_to_match, pattern) for pattern in patterns)


# --------------------------------------------------------------------------------------
# Indicators of compromise
# --------------------------------------------------------------------------------------


def defang_ioc(ioc: str) -> str:
    """Make an indicator safe to paste: ``http://a.b`` becomes ``hxxp://a[.]b``."""
    defanged = re.sub(r"^http(s?)://", r"hxxp\1://", ioc)
    return defanged.replace(".", "[.]")


def ioc_match(indicators: Optional[Iterable[str]], known_iocs: Iterable[str]) -> list:
    """Return the indicators, in order, that appear in ``known_iocs``."""
    known = known_iocs if isinstance(known_iocs, (set, frozenset, dict)) else set(known_iocs)
    return [indicator for indicator in indicators or () if indicator in known]


# --------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------

_FRACTION = re.compile(r"\.(\d+)")


def _trim_fraction_to_micros(timestamp: str) -> str:
    """Cut a fractional-seconds part to at most six digits (datetime's precision)."""
    return _FRACTION.sub(lambda match: "." + match.group(1)[:6], timestamp, count=1)


def panther_nanotime_to_python_datetime(panther_time: str) -> datetime:
    """Parse Panther's ``p_event_time`` form, ``YYYY-MM-DD HH:MM:SS[.fffffffff]``.

    Digits past microseconds are dropped and the result is a naive UTC datetime."""
    text = _trim_fraction_to_micros(panther_time.strip())
    layout = "%Y-%m-%d %H:%M:%S.%f" if "." in text else "%Y-%m-%d %H:%M:%S"
    return datetime.strptime(text, layout)


def golang_nanotime_to_python_datetime(golang_time: str) -> datetime:
    """Parse Go's RFC 3339 nano form, ``YYYY-MM-DDTHH:MM:SS[.fffffffff]Z``, as naive UTC."""
    text = _trim_fraction_to_micros(golang_time.strip())
    layout = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, layout)


# Layouts tried, in order, before falling back to dateutil. The unambiguous machine
# formats come first; "*" is not a wildcard here, so none is used.
_KNOWN_LAYOUTS = (
    "%Y-%m-%d %H:%M:%S.%f",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S.%fZ",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y-%m-%dT%H:%M:%S.%f%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S.%f",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f%z",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S %z",
    "%Y-%m-%d %H:%M:%S,%f",
    "%d/%b/%Y:%H:%M:%S %z",
    "%b %d %H:%M:%S %Y",
    "%b %d %Y %H:%M:%S",
    "%b %d, %Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M:%S",
)
_EPOCH = re.compile(r"^\s*(\d{9,12}(?:\.\d+)?)\s*$")


def resolve_timestamp_string(timestamp: Optional[str]) -> Optional[datetime]:
    """Turn a timestamp in any common layout into a datetime, or ``None``.

    Known layouts are tried first; layouts without a zone give naive datetimes. Then
    dateutil's parser, then epoch seconds (9 to 12 digits, optional fraction), which
    give naive UTC."""
    if not timestamp:
        return None
    text = str(timestamp).replace("'", "").strip()
    trimmed = _trim_fraction_to_micros(text)
    for layout in _KNOWN_LAYOUTS:
        try:
            return datetime.strptime(trimmed, layout)
        except ValueError:
            continue
    epoch = _EPOCH.match(text)
    if epoch:
        try:
            return datetime.fromtimestamp(float(epoch.group(1)), tz=timezone.utc).replace(
                tzinfo=None
            )
        except (OverflowError, OSError, ValueError):
            return None
    try:
        return dateutil_parser.parse(text)
    except (ValueError, OverflowError, TypeError):
        return None


def nano_to_micro(time_str: str) -> str:
    """Round the seconds field (after the last ``:``) to microseconds, zero-padded."""
    head, _, seconds = time_str.rpartition(":")
    rounded = f"{float(seconds):09.6f}"
    return f"{head}:{rounded}" if head else rounded


def time_delta(time1: str, time2: str) -> str:
    """Describe how much later ``time2`` is than ``time1``, e.g.
    ``"1 day(s) 2 hour(s) 5 second(s)"``. Units that are zero are left out, and the
    result is empty when the two times are equal or ``time2`` is earlier."""
    start = resolve_timestamp_string(nano_to_micro(time1))
    end = resolve_timestamp_string(nano_to_micro(time2))
    if start is None or end is None:
        return ""
    if (start.tzinfo is None) != (end.tzinfo is None):
        start, end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    delta = end - start
    if delta.total_seconds() <= 0:
        return ""
    hours, rest = divmod(delta.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    for amount, unit in ((delta.days, "day"), (hours, "hour"), (minutes, "minute")):
        if amount > 0:
            parts.append(f"{amount} {unit}(s)")
    if seconds > 0:
        parts.append(f"{seconds} second(s)")
    return " ".join(parts)


def add_parse_delay(event: Any, context: dict) -> dict:
    """Add ``parseDelay``: how long after ``p_event_time`` the event was parsed."""
    context["parseDelay"] = time_delta(event.get("p_event_time"), event.get("p_parse_time"))
    return context


# --------------------------------------------------------------------------------------
# Alerting
# --------------------------------------------------------------------------------------

SEVERITY_LEVELS = {"INFO": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def severity_greater_than(sev1: str, sev2: str) -> bool:
    """Compare two severity names; an unknown name ranks below INFO."""
    return SEVERITY_LEVELS.get(sev1, -1) > SEVERITY_LEVELS.get(sev2, -1)


def _pantherflow_list(values: Any) -> str:
    return repr([str(value) for value in values if value is not None])


def pantherflow_investigation(event: Any, interval: str = "30m") -> str:
    """Build a PantherFlow query that finds the signals and logs sharing an indicator
    (any ``p_any_*`` field except AWS account IDs) with ``event``, within ``interval``
    either side of its ``p_event_time``.

    Kept so that Panther content importing it loads. pantherd has no data lake to run the
    query on, so the bundled rules do not put it in their alert context."""
    table = str(event.get("p_log_type") or "").lower().replace(".", "_")
    when = event.get("p_event_time") or ""
    lines = [
        "union panther_signals.public.correlation_signals",
        f"    , panther_logs.public.{table}",
        f"| where p_event_time between time.parse_timestamp('{when}')"
        f" - time.parse_timespan('{interval}')"
        f" .. time.parse_timestamp('{when}') + time.parse_timespan('{interval}')",
    ]
    overlaps = []
    for field, values in event.items():
        if not str(field).startswith("p_any_") or field == "p_any_aws_account_ids":
            continue
        if not _is_sequence(values) or not values:
            continue
        overlaps.append(f"arrays.overlap({field}, {_pantherflow_list(values)})")
    if overlaps:
        lines.append("| where " + "\n     or ".join(overlaps))
    lines.append("| sort p_event_time")
    return "\n".join(lines)


def okta_alert_context(event: Any) -> dict:
    """Kept for packs that import the Okta context from this module; the
    implementation lives in ``panther_okta_helpers``."""
    # Imported here because panther_okta_helpers itself imports this module.
    from panther_okta_helpers import (  # pylint: disable=import-outside-toplevel
        okta_alert_context as okta_context,
    )

    return okta_context(event)


def dbprint(*values: object, sep: str = " ", end: str = "\n") -> None:
    """Debug print that stays silent in production.

    Panther's debugging tool swaps this for ``print``; here it does nothing, so
    sensitive fields printed while debugging never reach the server logs."""
    del values, sep, end
