#!/usr/bin/python3
"""Reference evaluator: Panther's way of running Python rules, in plain Python.

This is the baseline pantherd is measured against. For each event (JSON lines) it
does what Panther's rule engine does: `json.loads`, add Panther's standard p_ fields
(computed exactly as pantherd's normaliser does, so rules see the same values),
wrap the row in a case-insensitive read-only mapping with Panther's PantherEvent
semantics (get, deep_get, deep_walk, udm through the pack's data models,
event_time_epoch), run every enabled rule of the folder whose LogTypes contain
the event's log type (rule(), then title, description, reference, severity,
runbook, destinations, dedup, alert_context), and group matches into alerts with
pantherd's default dedup semantics: per (rule, dedup string) windows on event time
(p_event_time), opened by the first match, lasting DedupPeriodMinutes; an alert
exists once a window's count reaches Threshold, and later matches in the window
add to its count. Rule errors group per (rule, exception type), threshold 1;
CreateAlert: false rules produce signals, threshold 1.

The rule folder is read as panther_analysis_tool reads it: every *.yml/*.yaml spec
(hidden folders and __pycache__ skipped); globals become importable modules named
by GlobalID; enabled data models map names for event.udm(); each rule is a module
named after its RuleID. `panther_detection_helpers.caching` is provided in memory
with pantherd's semantics (string sets, counters, dictionaries, absolute expiry in
epoch seconds, expired entries read as absent).

Usage: reference.py --rules DIR --events FILE [--out alerts.json]
Writes {"alerts": [...], "stats": {...}} as JSON (stdout by default).
"""

import argparse
import array
import ipaddress
import json
import os
import resource
import sys
import time
import types
from collections.abc import Mapping, Sequence
import bisect
import importlib.abc
import importlib.util

import yaml

LOG_TYPE = "Okta.SystemLog"
MAX_FIELD = 1000
TRUNCATED = "... (truncated)"
SEVERITIES = ("INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL")


# ---------------------------------------------------------------------------
# The event object (Panther's ImmutableCaseInsensitiveDict / ImmutableList /
# PantherEvent semantics, written for this benchmark).


def _wrap(value):
    if isinstance(value, dict):
        return ImmutableCaseInsensitiveDict(value)
    if isinstance(value, list):
        return ImmutableList(value)
    return value


def _plain(value):
    if isinstance(value, ImmutableCaseInsensitiveDict):
        return {k: _plain(v) for k, v in value._container.items()}
    if isinstance(value, ImmutableList):
        return [_plain(v) for v in value._container]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class ImmutableList(Sequence):
    """A read-only, tuple-backed view of a JSON array; nested containers are wrapped
    when read."""

    __slots__ = ("_container",)

    def __init__(self, data):
        self._container = tuple(data)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._container[index]
        return _wrap(self._container[index])

    def __len__(self):
        return len(self._container)

    def __iter__(self):
        for item in self._container:
            yield _wrap(item)

    def __eq__(self, other):
        if isinstance(other, ImmutableList):
            return self._container == other._container
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return False

    __hash__ = None

    def copy(self):
        return _plain(self)

    as_list = copy

    def __repr__(self):
        return f"ImmutableList({self._container!r})"


class ImmutableCaseInsensitiveDict(Mapping):
    """A read-only view of a JSON object. Lookups ignore case: the key with exactly
    the asked case wins, else the first key in document order with the same
    lower-case form. Built like Panther's: a shallow copy and a lower-case key
    index per object, nested containers wrapped on every read."""

    __slots__ = ("_container", "_lower")

    def __init__(self, data):
        self._container = dict(data)
        lower = {}
        for key in self._container:
            lower.setdefault(key.lower(), key)
        self._lower = lower

    def _find(self, key):
        if key in self._container:
            return key
        return self._lower.get(key.lower(), key)

    def __getitem__(self, key):
        return _wrap(self._container[self._find(key)])

    def get(self, key, default=None):
        real = self._find(key)
        if real in self._container:
            return _wrap(self._container[real])
        return default

    def __contains__(self, key):
        return self._find(key) in self._container

    def __iter__(self):
        return iter(self._container)

    def __len__(self):
        return len(self._container)

    def __setitem__(self, key, value):
        raise TypeError(f"'{type(self).__name__}' object does not support item assignment")

    def __delitem__(self, key):
        raise TypeError(f"'{type(self).__name__}' object does not support item deletion")

    def __eq__(self, other):
        if isinstance(other, Mapping):
            return dict(self.items()) == dict(other.items())
        return False

    __hash__ = None

    def copy(self):
        return _plain(self)

    to_dict = copy

    def __repr__(self):
        return f"{type(self).__name__}({self._container!r})"


class PantherError(Exception):
    pass


class PantherEvent(ImmutableCaseInsensitiveDict):
    """The root event: deep_get, deep_walk, udm, udm_path, event_time_epoch, lookup."""

    __slots__ = ("data_model",)

    def __init__(self, data, data_model=None):
        super().__init__(data)
        self.data_model = data_model

    def deep_get(self, *keys, default=None):
        value = self
        for key in keys:
            if not isinstance(value, Mapping):
                return default
            value = value.get(key)
            if value is None:
                return default
        return default if value is None else value

    def deep_walk(self, *keys, default=None, return_val="all"):
        def walk(obj, idx):
            if idx == len(keys):
                return [obj]
            out = []
            if isinstance(obj, dict):
                if keys[idx] in obj:
                    out.extend(walk(obj[keys[idx]], idx + 1))
            elif isinstance(obj, list):
                for item in obj:
                    out.extend(walk(item, idx))
            return out

        found = []
        for value in walk(self._container, 0):
            items = value if isinstance(value, list) else [value]
            for item in items:
                if item is not None and item not in found:
                    found.append(item)
        if not found:
            return default
        if return_val == "first":
            return found[0]
        if return_val == "last":
            return found[-1]
        return found[0] if len(found) == 1 else found

    def udm(self, *keys, default=None):
        model = self.data_model
        if model is not None and len(keys) == 1 and keys[0] in model.mappings:
            kind, target = model.mappings[keys[0]]
            if kind == "method":
                value = target(ImmutableCaseInsensitiveDict(self._container))
                return default if value is None else value
            matches = target(self._container)
            if len(matches) > 1:
                raise Exception(
                    f"JSONPath [{keys[0]}] in DataModel [{model.id}], matched multiple fields."
                )
            if not matches:
                return default
            return _wrap(matches[0])
        value = self.deep_get("p_udm", *keys)
        if value:
            return value
        value = self.deep_get(*keys)
        if value:
            return value
        return default

    def udm_path(self, key):
        if self.data_model is None:
            raise PantherError(
                "a data model hasn't been specified for log type: "
                f"{self._container.get('p_log_type')}"
            )
        mapping = self.data_model.mappings.get(key)
        if mapping is None:
            return None
        return mapping[1].__name__ if mapping[0] == "method" else mapping[2]

    def event_time_epoch(self, force_utc=True):
        import dateutil.parser  # pylint: disable=import-outside-toplevel

        try:
            text = self.get("p_event_time")
            return int(dateutil.parser.parse(text + (" UTC" if force_utc else "")).timestamp())
        except (TypeError, ValueError, OverflowError):
            return 0

    def lookup(self, table, key):
        return self.deep_get("_mocked_lookup_data_", table, key)

    @staticmethod
    def json_encoder(obj):
        """json.dumps(x, default=PantherEvent.json_encoder) unwraps the read-only
        containers; anything else that json cannot encode stays an error."""
        if isinstance(obj, (ImmutableCaseInsensitiveDict, ImmutableList)):
            return _plain(obj)
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# ---------------------------------------------------------------------------
# Standard fields, as pantherd's normaliser computes them.


def _drop_nulls(value):
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _looks_like_email(s):
    at = s.find("@")
    if at <= 0 or s.find("@", at + 1) != -1:
        return False
    for c in s:
        if ord(c) <= 32 or c in '"<>,':
            return False
    domain = s[at + 1:]
    return bool(
        domain and domain[0] != "." and domain[-1] != "." and ".." not in domain and "." in domain
    )


def _is_ip(s):
    if not s or len(s) > 64:
        return False
    try:
        ipaddress.ip_address(s)
        return True
    except ValueError:
        return False


def _parse_rfc3339_us(text):
    """RFC 3339 with a Z or offset -> (microseconds since the epoch, the fraction in
    nanoseconds); None if it does not parse."""
    import datetime  # pylint: disable=import-outside-toplevel

    if not isinstance(text, str) or len(text) < 20:
        return None
    try:
        body = text.replace("t", "T").replace("z", "Z")
        if body.endswith("Z"):
            body = body[:-1] + "+00:00"
        date, rest = body.split("T", 1)
        sign_at = max(rest.rfind("+"), rest.rfind("-"))
        clock, offset = rest[:sign_at], rest[sign_at:]
        frac = ""
        if "." in clock:
            clock, frac = clock.split(".", 1)
        base = datetime.datetime.fromisoformat(f"{date}T{clock}{offset}")
        micros = int((frac + "000000")[:6]) if frac else 0
        return int(base.timestamp()) * 1000000 + micros, int((frac + "000000000")[:9] or 0)
    except ValueError:
        return None


def panther_time(us, nanos_fraction):
    secs = us // 1000000
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(secs)) + f".{nanos_fraction:09d}"


class Normalizer:
    """Builds the row rules see from a parsed Okta event, like pantherd: null members
    dropped, `published` in Panther's format, p_ fields appended."""

    def __init__(self, source_label="api"):
        self.source = source_label
        self.counter = 0

    def __call__(self, raw, parse_us):
        row = _drop_nulls(raw)
        for key in [k for k in row if k.startswith("p_")]:
            if key in (
                "p_log_type", "p_row_id", "p_event_time", "p_parse_time", "p_source_id",
                "p_source_label", "p_any_ip_addresses", "p_any_domain_names", "p_any_emails",
                "p_any_usernames",
            ):
                del row[key]
        parsed = _parse_rfc3339_us(row.get("published"))
        parse_text = panther_time(parse_us, (parse_us % 1000000) * 1000)
        if parsed is not None:
            event_us, nanos = parsed
            row["published"] = panther_time(event_us, nanos)
            event_text = row["published"]
        else:
            event_us, event_text = parse_us, parse_text
        ips, domains, emails, users = set(), set(), set(), set()

        def add_user_or_email(holder):
            if not isinstance(holder, dict):
                return
            value = holder.get("alternateId")
            if not isinstance(value, str) or not value:
                return
            email = _looks_like_email(value)
            if email:
                emails.add(value)
            elif holder.get("type") in ("User", "AppUser"):
                users.add(value)

        client = row.get("client")
        if isinstance(client, dict) and isinstance(client.get("ipAddress"), str):
            if _is_ip(client["ipAddress"]):
                ips.add(client["ipAddress"])
        request = row.get("request")
        if isinstance(request, dict) and isinstance(request.get("ipChain"), list):
            for hop in request["ipChain"]:
                if isinstance(hop, dict) and isinstance(hop.get("ip"), str) and _is_ip(hop["ip"]):
                    ips.add(hop["ip"])
        security = row.get("securityContext")
        if isinstance(security, dict) and isinstance(security.get("domain"), str):
            if security["domain"]:
                domains.add(security["domain"])
        add_user_or_email(row.get("actor"))
        if isinstance(row.get("target"), list):
            for target in row["target"]:
                add_user_or_email(target)
        self.counter += 1
        row["p_log_type"] = LOG_TYPE
        row["p_row_id"] = f"{self.counter:032x}"
        row["p_event_time"] = event_text
        row["p_parse_time"] = parse_text
        row["p_source_id"] = self.source
        row["p_source_label"] = self.source
        row["p_any_ip_addresses"] = sorted(ips, key=lambda s: s.encode())
        row["p_any_domain_names"] = sorted(domains, key=lambda s: s.encode())
        row["p_any_emails"] = sorted(emails, key=lambda s: s.encode())
        row["p_any_usernames"] = sorted(users, key=lambda s: s.encode())
        return row, event_us


# ---------------------------------------------------------------------------
# panther_detection_helpers.caching, in memory, with pantherd's semantics.


def make_caching_module():
    store = {}  # key -> [expiry, counter, set, dictionary JSON or None]
    module = types.ModuleType("panther_detection_helpers.caching")
    default_delta = 90 * 24 * 60 * 60

    def live(key):
        item = store.get(key)
        if item is not None and item[0] and item[0] <= time.time():
            del store[key]
            return None
        return item

    def finalize(epoch_seconds):
        if isinstance(epoch_seconds, str):
            epoch_seconds = float(epoch_seconds)
        if isinstance(epoch_seconds, float):
            epoch_seconds = int(epoch_seconds)
        if not isinstance(epoch_seconds, int):
            epoch_seconds = int(time.time()) + default_delta
        if epoch_seconds < 1000000000:
            epoch_seconds = int(time.time()) + epoch_seconds
        return epoch_seconds

    def optional(epoch_seconds):
        return 0 if epoch_seconds is None else finalize(epoch_seconds)

    def strings(val):
        if isinstance(val, str):
            return [val]
        items = set(val)
        for item in items:
            if not isinstance(item, str):
                raise TypeError("string sets hold str only, got [%s]" % type(item).__name__)
        return sorted(items)

    def item_for(key, expire):
        if not isinstance(key, str):
            raise TypeError("cache keys must be str, got [%s]" % type(key).__name__)
        item = live(key)
        if item is None:
            item = [0, None, None, None]
            store[key] = item
        if expire:
            item[0] = expire
        return item

    def cleanup(key, item):
        if item[1] is None and not item[2] and item[3] is None:
            store.pop(key, None)

    def get_counter(key, force_ttl_check=False):
        item = live(key)
        return 0 if item is None or item[1] is None else item[1]

    def increment_counter(key, val=1, epoch_seconds=default_delta):
        item = item_for(key, optional(epoch_seconds))
        item[1] = (item[1] or 0) + int(val)
        return item[1]

    def reset_counter(key):
        item = live(key)
        if item is not None:
            item[1] = None
            cleanup(key, item)

    def set_key_expiration(key, epoch_seconds):
        item = live(key)
        if item is not None:
            item[0] = finalize(epoch_seconds)

    def put_dictionary(key, val, epoch_seconds=None):
        if not isinstance(val, Mapping):
            raise TypeError("panther_oss_helpers.put_dictionary: value is not a dictionary")
        data = json.dumps(val)
        store.pop(key, None)
        item_for(key, finalize(epoch_seconds))[3] = data

    def get_dictionary(key, force_ttl_check=False):
        item = live(key)
        if item is None or not item[3]:
            return {}
        return json.loads(item[3])

    def get_string_set(key, force_ttl_check=False):
        item = live(key)
        return set() if item is None or not item[2] else set(item[2])

    def reset_string_set(key):
        store.pop(key, None)

    def put_string_set(key, val, epoch_seconds=None):
        if not val:
            reset_string_set(key)
            return
        values = strings(val)
        store.pop(key, None)
        item_for(key, finalize(epoch_seconds))[2] = set(values)

    def add_to_string_set(key, val, epoch_seconds=default_delta):
        values = strings(val)
        if not values:
            return get_string_set(key)
        item = item_for(key, optional(epoch_seconds))
        if item[2] is None:
            item[2] = set()
        item[2].update(values)
        return set(item[2])

    def remove_from_string_set(key, val, epoch_seconds=default_delta):
        values = strings(val)
        if not values:
            return get_string_set(key)
        item = item_for(key, optional(epoch_seconds))
        if item[2]:
            item[2].difference_update(values)
        result = set(item[2] or ())
        if not item[2]:
            item[2] = None
            cleanup(key, item)
        return result

    def evaluate_threshold(key, threshold=10, expiry_seconds=3600):
        count = increment_counter(key, epoch_seconds=expiry_seconds)
        if count >= threshold:
            reset_counter(key)
            return True
        return False

    def check_account_age(key):
        if isinstance(key, str) and key != "":
            return bool(get_string_set(key))
        return False

    def ttl_expired(response):
        return False

    # Calls rules make, by kind: each is one KV round trip in pantherd (a write is
    # also one durable store write there).
    calls = {"reads": 0, "writes": 0}

    def counted(fn, kind):
        def wrapper(*args, **kwargs):
            calls[kind] += 1
            return fn(*args, **kwargs)

        wrapper.__name__ = fn.__name__
        wrapper.__doc__ = fn.__doc__
        return wrapper

    for fn in (get_counter, get_dictionary, get_string_set, check_account_age):
        setattr(module, fn.__name__, counted(fn, "reads"))
    for fn in (increment_counter, reset_counter, set_key_expiration, put_dictionary,
               reset_string_set, put_string_set, add_to_string_set, remove_from_string_set,
               evaluate_threshold):
        setattr(module, fn.__name__, counted(fn, "writes"))
    module.ttl_expired = ttl_expired
    module._store = store  # pylint: disable=protected-access
    module._calls = calls  # pylint: disable=protected-access
    return module


# ---------------------------------------------------------------------------
# Loading a rule folder.


class DataModel:
    def __init__(self, model_id):
        self.id = model_id
        self.mappings = {}


def compile_json_path(path):
    """$.a.b, ['a'], [N], [*], .* on the raw (case-sensitive) row -> matcher(list)."""
    text = path.strip()
    if text.startswith("$"):
        text = text[1:]
    steps = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == ".":
            j = i + 1
            while j < len(text) and text[j] not in ".[":
                j += 1
            name = text[i + 1:j]
            steps.append(("*",) if name == "*" else ("key", name))
            i = j
        elif c == "[":
            j = text.index("]", i)
            inner = text[i + 1:j].strip()
            if inner == "*":
                steps.append(("*",))
            elif inner[:1] in "'\"":
                steps.append(("key", inner[1:-1]))
            else:
                steps.append(("idx", int(inner)))
            i = j + 1
        else:
            j = i
            while j < len(text) and text[j] not in ".[":
                j += 1
            steps.append(("key", text[i:j]))
            i = j

    def match(root):
        current = [root]
        for step in steps:
            nxt = []
            for value in current:
                if step[0] == "key":
                    if isinstance(value, dict) and step[1] in value:
                        nxt.append(value[step[1]])
                elif step[0] == "idx":
                    if isinstance(value, list) and 0 <= step[1] < len(value):
                        nxt.append(value[step[1]])
                elif isinstance(value, dict):
                    nxt.extend(value.values())
                elif isinstance(value, list):
                    nxt.extend(value)
            current = nxt
        return current

    return match


class _GlobalFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes the pack's globals importable by GlobalID, in any order."""

    def __init__(self, sources, builtin):
        self.sources = sources  # name -> (path, source)
        self.builtin = builtin  # name -> module

    def find_spec(self, fullname, path, target=None):
        if fullname in self.sources or fullname in self.builtin:
            return importlib.util.spec_from_loader(fullname, self,
                                                   is_package=fullname in ("panther_detection_helpers",))
        return None

    def create_module(self, spec):
        return self.builtin.get(spec.name)

    def exec_module(self, module):
        if module.__name__ in self.builtin:
            return
        path, source = self.sources[module.__name__]
        module.__file__ = path
        exec(compile(source, path, "exec"), module.__dict__)  # pylint: disable=exec-used


class Rule:
    __slots__ = ("id", "module", "log_types", "period_us", "threshold", "create_alert",
                 "display_name", "severity", "funcs", "rule_fn", "title_fn", "dedup_fn")


def load_folder(folder):
    """Returns (rules, data models by log type) of the enabled content in `folder`."""
    specs = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        for name in sorted(files):
            if name.startswith(".") or not (name.endswith(".yml") or name.endswith(".yaml")):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                spec = yaml.safe_load(f)
            if isinstance(spec, dict) and "AnalysisType" in spec:
                specs.append((path, spec))

    def source_of(path, spec):
        file_path = os.path.join(os.path.dirname(path), spec["Filename"])
        with open(file_path, encoding="utf-8") as f:
            return file_path, f.read()

    caching = make_caching_module()
    helpers = types.ModuleType("panther_detection_helpers")
    helpers.__path__ = []
    helpers.caching = caching
    builtin = {"panther_detection_helpers": helpers, "panther_detection_helpers.caching": caching}
    globals_src = {}
    for path, spec in specs:
        if spec.get("AnalysisType") == "global" and spec.get("Filename"):
            globals_src[spec["GlobalID"]] = source_of(path, spec)
    for name in list(globals_src) + list(builtin):
        sys.modules.pop(name, None)
    sys.meta_path.insert(0, _GlobalFinder(globals_src, builtin))
    load_folder.caching = caching

    models = {}
    for path, spec in specs:
        if spec.get("AnalysisType") != "datamodel" or spec.get("Enabled") is not True:
            continue
        model = DataModel(spec["DataModelID"])
        module = None
        if spec.get("Filename"):
            file_path, source = source_of(path, spec)
            module = types.ModuleType("datamodel_" + spec["DataModelID"].replace(".", "_"))
            module.__file__ = file_path
            exec(compile(source, file_path, "exec"), module.__dict__)  # pylint: disable=exec-used
        for mapping in spec.get("Mappings") or []:
            if "Method" in mapping:
                model.mappings[mapping["Name"]] = ("method", getattr(module, mapping["Method"]))
            else:
                model.mappings[mapping["Name"]] = ("path", compile_json_path(mapping["Path"]),
                                                   mapping["Path"].lstrip("$."))
        for log_type in spec.get("LogTypes") or []:
            models[log_type] = model

    rules = []
    for path, spec in specs:
        if spec.get("AnalysisType") != "rule" or spec.get("Enabled") is not True:
            continue
        if not spec.get("Filename"):
            continue  # Simple Detections are not Python
        file_path, source = source_of(path, spec)
        module = types.ModuleType(spec["RuleID"])
        module.__file__ = file_path
        exec(compile(source, file_path, "exec"), module.__dict__)  # pylint: disable=exec-used
        rule = Rule()
        rule.id = spec["RuleID"]
        rule.module = module
        rule.log_types = frozenset(spec.get("LogTypes") or ())
        period = int(spec.get("DedupPeriodMinutes", 60) or 60)
        rule.period_us = (period if period > 0 else 60) * 60 * 1000000
        threshold = int(spec.get("Threshold", 1) or 1)
        rule.threshold = threshold if threshold > 0 else 1
        rule.create_alert = spec.get("CreateAlert", True) is not False
        rule.display_name = spec.get("DisplayName") or ""
        rule.severity = spec.get("Severity")
        rule.rule_fn = module.rule
        rule.funcs = [
            (name, getattr(module, name))
            for name in ("title", "description", "reference", "severity", "runbook",
                         "destinations", "dedup", "alert_context", "unique")
            if hasattr(module, name)
        ]
        rule.title_fn = getattr(module, "title", None)
        rule.dedup_fn = getattr(module, "dedup", None)
        rules.append(rule)
    return rules, models


# ---------------------------------------------------------------------------
# Running rules and grouping matches.


def truncate(value):
    if len(value) > MAX_FIELD:
        return value[: MAX_FIELD - len(TRUNCATED)] + TRUNCATED
    return value


class FunctionReturnTypeError(Exception):
    pass


def run_rule(rule, event):
    """(matched, dedup string or error type) for one rule on one event. Production
    order: rule(), then the auxiliary functions, each isolated."""
    try:
        result = rule.rule_fn(event)
    except Exception as exc:  # pylint: disable=broad-except
        return "error", type(exc).__name__
    if not isinstance(result, bool):
        return "error", FunctionReturnTypeError.__name__
    if result is not True:
        return None, None
    outputs = {}
    for name, fn in rule.funcs:
        try:
            value = fn(event)
        except Exception:  # pylint: disable=broad-except
            outputs[name] = ("raised", None)
            continue
        if name == "alert_context":
            try:
                if not isinstance(value, Mapping):
                    raise TypeError("alert_context must return a Mapping")
                json.dumps(value, default=PantherEvent.json_encoder)
            except Exception:  # pylint: disable=broad-except
                outputs[name] = ("raised", None)
                continue
        elif name == "severity":
            if not isinstance(value, str) or (
                value.upper() not in SEVERITIES and value.upper() != "DEFAULT"
            ):
                outputs[name] = ("raised", None)
                continue
        elif name in ("title", "dedup", "description", "reference", "runbook"):
            if not isinstance(value, str):
                outputs[name] = ("raised", None)
                continue
            value = truncate(value)
        outputs[name] = ("ok", value)
    default = f"defaultDedupString:{rule.id}"
    if rule.dedup_fn is not None:
        status, value = outputs["dedup"]
        dedup = value if status == "ok" and value else default
    elif rule.title_fn is not None:
        status, value = outputs["title"]
        if status == "raised":
            dedup = rule.id
        else:
            dedup = value if value else default
    else:
        dedup = default
    return ("match" if rule.create_alert else "signal"), dedup


class Windows:
    """pantherd's dedup windows on event time (engine/alert_engine.h): join the window
    containing t; else pull the next window's start back to t when it still covers
    all its matches; else open [t, t + period) cut at the next window's start."""

    def __init__(self):
        self.groups = {}  # key -> sorted list of [start, end, count, latest]

    def add(self, key, t, period):
        windows = self.groups.setdefault(key, [])
        starts = [w[0] for w in windows] if len(windows) > 8 else None
        if starts is not None:
            i = bisect.bisect_right(starts, t)
        else:
            i = 0
            while i < len(windows) and windows[i][0] <= t:
                i += 1
        if i > 0 and windows[i - 1][0] <= t < windows[i - 1][1]:
            w = windows[i - 1]
            w[2] += 1
            w[3] = max(w[3], t)
            return
        if i < len(windows):
            nxt = windows[i]
            if nxt[3] < t + period:
                nxt[0] = t
                nxt[1] = min(t + period, nxt[1])
                nxt[2] += 1
                return
            windows.insert(i, [t, min(t + period, nxt[0]), 1, t])
            return
        windows.append([t, t + period, 1, t])


def evaluate(rules_dir, events_path):
    rules, models = load_folder(rules_dir)
    by_log_type = {}
    for rule in rules:
        for log_type in rule.log_types:
            by_log_type.setdefault(log_type, []).append(rule)
    normalize = Normalizer()
    windows = Windows()
    thresholds = {}
    latencies = array.array("q")
    norm_ns = 0
    events = 0
    matches = errors = 0
    perf = time.perf_counter_ns
    loads = json.loads
    wall0 = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    start = perf()
    with open(events_path, "rb") as f:
        for line in f:
            if not line.strip():
                continue
            t0 = perf()
            raw = loads(line)
            t1 = perf()
            row, event_us = normalize(raw, int(time.time() * 1000000))
            t2 = perf()
            norm_ns += t2 - t1
            log_type = row["p_log_type"]
            event = PantherEvent(row, models.get(log_type))
            for rule in by_log_type.get(log_type, ()):
                kind, value = run_rule(rule, event)
                if kind is None:
                    continue
                if kind == "error":
                    errors += 1
                    key = ("RULE_ERROR", rule.id, value)
                    thresholds[key] = 1
                else:
                    matches += 1
                    key = ("RULE" if kind == "match" else "SIGNAL", rule.id, value)
                    thresholds[key] = rule.threshold if kind == "match" else 1
                windows.add(key, event_us, rule.period_us)
            latencies.append(perf() - t0 - (t2 - t1))
            events += 1
    elapsed_ns = perf() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_seconds = usage.ru_utime + usage.ru_stime - cpu0
    alerts = []
    for key, group in windows.groups.items():
        for start_us, _, count, _ in group:
            if count >= thresholds[key]:
                alerts.append({"type": key[0], "rule_id": key[1], "dedup": key[2],
                               "window_start_us": start_us, "event_count": count})
    alerts.sort(key=lambda a: (a["rule_id"], a["dedup"], a["window_start_us"], a["type"]))
    lat = sorted(latencies)

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] / 1000.0 if lat else 0.0

    engine_ns = elapsed_ns - norm_ns
    stats = {
        "events": events,
        "rules": len(rules),
        "matches": matches,
        "rule_errors": errors,
        "seconds": elapsed_ns / 1e9,
        "normalize_seconds": norm_ns / 1e9,
        "events_per_second": events / (engine_ns / 1e9) if engine_ns else 0.0,
        "events_per_second_with_normalize": events / (elapsed_ns / 1e9) if elapsed_ns else 0.0,
        "latency_p50_us": pct(0.50),
        "latency_p99_us": pct(0.99),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "cache_reads": load_folder.caching._calls["reads"],  # pylint: disable=protected-access
        "cache_writes": load_folder.caching._calls["writes"],  # pylint: disable=protected-access
        "cpu_seconds": cpu_seconds,
        # CPU time of the engine part (normalisation's share of the wall time removed):
        # the figure to compare on a machine shared with other work.
        "events_per_cpu_second": (
            events / (cpu_seconds * engine_ns / elapsed_ns) if cpu_seconds and elapsed_ns else 0.0
        ),
        "started_unix": wall0,
    }
    return {"alerts": alerts, "stats": stats}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", required=True, help="rule folder (panther-analysis layout)")
    parser.add_argument("--events", required=True, help="events, one JSON object per line")
    parser.add_argument("--out", default="-", help="result JSON file (default stdout)")
    args = parser.parse_args(argv)
    result = evaluate(args.rules, args.events)
    text = json.dumps(result, indent=1, sort_keys=True)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
