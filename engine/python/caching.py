# panther_detection_helpers.caching as pantherd provides it: Panther's
# signatures and argument handling (panther_detection_helpers 0.4+ caching.py)
# over pantherd's key-value store.
#
# pantherd embeds this file at build time (engine/CMakeLists.txt turns it into
# a C++ character array). PythonRuntime (engine/python_runtime.cc) compiles it
# as panther_detection_helpers/caching.py into a fresh module, then replaces
# the placeholders _kv_call and _kv_now below with its own functions; rules
# import the module by its Panther name. Its unit tests are
# engine/python/caching_test.py, which install fakes the same way. (These are
# comments, not the docstring, so that the module's __doc__ stays the one
# rules see.)
"""Panther's detection cache (string sets, counters, dictionaries with expiry),
provided natively by pantherd over its key-value store."""
import json
from collections.abc import Mapping


def _kv_call(op, key, values, increment, expire, data):
    """Placeholder: pantherd replaces it with its key-value call once this
    file has run; (op, key, values, increment, expire, json data) ->
    (string set values, counter value, dictionary json)."""
    raise RuntimeError("panther_detection_helpers.caching: no key-value store installed")


def _kv_now():
    """Placeholder: pantherd replaces it with the key-value store's clock
    (Unix seconds) once this file has run."""
    raise RuntimeError("panther_detection_helpers.caching: no key-value clock installed")


_EPOCH_SECONDS_DELTA_DEFAULT = 90 * (60 * 60 * 24)  # 90 days

_OP_GET_STRING_SET = 1
_OP_PUT_STRING_SET = 2
_OP_ADD_TO_STRING_SET = 3
_OP_REMOVE_FROM_STRING_SET = 4
_OP_RESET_STRING_SET = 5
_OP_INCREMENT_COUNTER = 6
_OP_GET_COUNTER = 7
_OP_RESET_COUNTER = 8
_OP_SET_KEY_EXPIRATION = 9
_OP_GET_DICTIONARY = 10
_OP_PUT_DICTIONARY = 11


def _call(op, key, values=(), increment=0, expire=0, data=""):
    if not isinstance(key, str):
        raise TypeError("cache keys must be str, got [%s]" % type(key).__name__)
    return _kv_call(op, key, list(values), int(increment), int(expire), data)


def _finalize_epoch_seconds(epoch_seconds):
    if isinstance(epoch_seconds, str):
        epoch_seconds = float(epoch_seconds)
    if isinstance(epoch_seconds, float):
        epoch_seconds = int(epoch_seconds)
    if not isinstance(epoch_seconds, int):
        epoch_seconds = _kv_now() + _EPOCH_SECONDS_DELTA_DEFAULT
    # Values below 1e9 count from now, as in Panther; "now" is the cache's
    # clock (the event's time under event-time windows), not time.time().
    if epoch_seconds < 1000000000:
        epoch_seconds = _kv_now() + epoch_seconds
    return epoch_seconds


def _optional_expiry(epoch_seconds):
    return 0 if epoch_seconds is None else _finalize_epoch_seconds(epoch_seconds)


def _strings(val):
    if isinstance(val, str):
        return [val]
    items = set(val)
    for item in items:
        if not isinstance(item, str):
            raise TypeError("string sets hold str only, got [%s]" % type(item).__name__)
    return sorted(items)


def ttl_expired(response):
    """Expired entries always read as absent in pantherd, whatever
    force_ttl_check says (Panther only promises it with force_ttl_check=True)."""
    return False


def get_counter(key, force_ttl_check=False):
    """Get a counter's current value (0 if the key does not exist)."""
    return _call(_OP_GET_COUNTER, key)[1]


def increment_counter(key, val=1, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Add `val` to a counter and return the new value; epoch_seconds=None keeps the expiry."""
    return _call(_OP_INCREMENT_COUNTER, key, increment=val, expire=_optional_expiry(epoch_seconds))[1]


def reset_counter(key):
    """Reset a counter to 0."""
    _call(_OP_RESET_COUNTER, key)


def set_key_expiration(key, epoch_seconds):
    """Make the key expire at `epoch_seconds` (absolute, or seconds from now if < 1e9)."""
    _call(_OP_SET_KEY_EXPIRATION, key, expire=_finalize_epoch_seconds(epoch_seconds))


def put_dictionary(key, val, epoch_seconds=None):
    """Overwrite a dictionary (JSON-serializable) under the given key."""
    if not isinstance(val, (dict, Mapping)):
        raise TypeError("panther_oss_helpers.put_dictionary: value is not a dictionary")
    try:
        data = json.dumps(val)
    except TypeError as exc:
        raise ValueError(
            "panther_oss_helpers.put_dictionary: "
            "value is a dictionary, but it is not JSON serializable"
        ) from exc
    _call(_OP_PUT_DICTIONARY, key, expire=_finalize_epoch_seconds(epoch_seconds), data=data)


def get_dictionary(key, force_ttl_check=False):
    """Retrieve the dictionary under the given key ({} if absent)."""
    item = _call(_OP_GET_DICTIONARY, key)[2]
    if not item:
        return {}
    try:
        return json.loads(item)
    except json.decoder.JSONDecodeError as exc:
        raise ValueError(
            "panther_oss_helpers.get_dictionary: "
            "Data found in DynamoDB could not be decoded into JSON"
        ) from exc


def get_string_set(key, force_ttl_check=False):
    """Get a string set's current value (empty set if the key does not exist)."""
    return set(_call(_OP_GET_STRING_SET, key)[0])


def put_string_set(key, val, epoch_seconds=None):
    """Overwrite a string set under the given key (an empty value removes it)."""
    if not val:
        reset_string_set(key)
        return
    _call(_OP_PUT_STRING_SET, key, _strings(val), expire=_finalize_epoch_seconds(epoch_seconds))


def add_to_string_set(key, val, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Add one string or several to a set; returns the new value of the set."""
    values = _strings(val)
    if not values:
        return get_string_set(key, force_ttl_check=True)
    return set(_call(_OP_ADD_TO_STRING_SET, key, values, expire=_optional_expiry(epoch_seconds))[0])


def remove_from_string_set(key, val, epoch_seconds=_EPOCH_SECONDS_DELTA_DEFAULT):
    """Remove one string or several from a set; returns the new value of the set."""
    values = _strings(val)
    if not values:
        return get_string_set(key, force_ttl_check=True)
    return set(
        _call(_OP_REMOVE_FROM_STRING_SET, key, values, expire=_optional_expiry(epoch_seconds))[0]
    )


def reset_string_set(key):
    """Reset a string set to empty."""
    _call(_OP_RESET_STRING_SET, key)


def evaluate_threshold(key, threshold=10, expiry_seconds=3600):
    """Increment a counter; when it reaches `threshold`, reset it and return True."""
    count = increment_counter(key, epoch_seconds=expiry_seconds)
    if count >= threshold:
        reset_counter(key)
        return True
    return False


def check_account_age(key):
    """True if an indicator-creation rule stored a string set under `key`."""
    if isinstance(key, str) and key != "":
        return bool(get_string_set(key, force_ttl_check=True))
    return False
