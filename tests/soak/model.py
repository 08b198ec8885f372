"""An independent model of pantherd's alert, idempotence and caching semantics.

Written from the documented semantics only (docs/alerting.md, the file
comment of engine/alert_engine.h, docs/rule-contract.md "The key-value space"
and the caching helpers), never from pantherd's code, so that the soak test
(soak_test.py) can compare what pantherd stored with what the documents say
it should store. It also models the soak test's own rules (tests/soak/rules).

Caching items expire by the window clock (docs/rule-contract.md, "The
key-value space"): an item whose expiry is at or before the evaluated event's
p_event_time in seconds (with the processing clock, pantherd's clock) reads as
absent; reads never delete; the purge deletes items expired before its
horizon. `--cache-expiry off` models items that never expire, for comparison.

Times are integers in microseconds since the epoch unless a name says
seconds. Everything is deterministic: the same batches give the same result.
"""

import collections
import datetime

DAY_S = 86400
# pantherd's default retentions (docs/alerting.md, "How long state lasts").
DEFAULT_RETENTIONS_S = {"processed": 7 * DAY_S, "window": 7 * DAY_S, "alert_log": 30 * DAY_S}

RULE = "ALERT_TYPE_RULE"
SIGNAL = "ALERT_TYPE_SIGNAL"
RULE_ERROR = "ALERT_TYPE_RULE_ERROR"

# The soak rules' specs (their .yml files): severity, period, threshold, type.
SPECS = {
    "Soak.Session.Reuse": dict(severity="MEDIUM", period_min=30, threshold=1, type=RULE),
    "Soak.MFA.Counter": dict(severity="HIGH", period_min=60, threshold=1, type=RULE),
    "Soak.Login.Failures": dict(severity="MEDIUM", period_min=60, threshold=4, type=RULE),
    "Soak.Policy.Changes": dict(severity="LOW", period_min=1440, threshold=2, type=RULE),
    "Soak.Account.Lock": dict(severity="INFO", period_min=120, threshold=1, type=SIGNAL),
    # Errors: threshold 1 whatever the spec says (5); the rule's period.
    "Soak.Broken.Rule": dict(severity="LOW", period_min=90, threshold=1, type=RULE_ERROR),
}
# Fields pantherd's documents do not fix for rule-error alerts, left out of
# the comparison for them.
UNSPECIFIED_ERROR_FIELDS = ("title", "severity")
SESSION_TTL_S = 2 * 3600  # soak_session_reuse.py
COUNTER_TTL_S = 30 * 60  # soak_mfa_counter.py
COUNTER_LIMIT = 3
SAMPLE_EVENTS = 3  # the soak runs pantherd with --alert-sample-events 3


def panther_time(seconds):
    """p_parse_time as pantherd writes it: 'YYYY-MM-DD HH:MM:SS.fffffffff' (UTC)."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S") + ".000000000"


class Caching:
    """panther_detection_helpers.caching as documented: one item per key with a
    string set and/or counter and an absolute expiry (seconds); an item whose
    expiry is <= now reads as absent; put_string_set replaces the item;
    reset_* deletes it."""

    def __init__(self, expiry_enabled):
        self.items = {}  # key -> {"set": set, "counter": int, "expiry": seconds}
        self.expiry_enabled = expiry_enabled

    def _live(self, key, now_s):
        item = self.items.get(key)
        if item is None:
            return None
        if self.expiry_enabled and item["expiry"] != 0 and item["expiry"] <= now_s:
            # Reads as absent; a read never deletes it (an event older than
            # its expiry, arriving later, still sees it), the purge does.
            return None
        return item

    def get_string_set(self, key, now_s):
        item = self._live(key, now_s)
        return set(item["set"]) if item else set()

    def put_string_set(self, key, values, expiry_s, now_s):
        self._live(key, now_s)
        self.items[key] = {"set": set(values), "counter": 0, "expiry": expiry_s}

    def increment_counter(self, key, by, expiry_s, now_s):
        item = self._live(key, now_s)
        if item is None:
            item = {"set": set(), "counter": 0, "expiry": 0}
            self.items[key] = item
        item["counter"] += by
        item["expiry"] = expiry_s
        return item["counter"]

    def reset(self, key):
        self.items.pop(key, None)


class Event:
    """One generated Okta event, with what the rules read from it."""

    __slots__ = ("uuid", "time_s", "event_type", "actor", "ip", "outcome", "session", "policy")

    def __init__(self, uuid, time_s, event_type, actor="", ip="", outcome="", session="",
                 policy=""):
        self.uuid = uuid
        self.time_s = time_s
        self.event_type = event_type
        self.actor = actor
        self.ip = ip
        self.outcome = outcome
        self.session = session
        self.policy = policy

    @property
    def time_us(self):
        return self.time_s * 1_000_000


def evaluate_rules(event, cache, cache_now_s):
    """The soak rules on one event: a list of matches (rule, title, dedup,
    severity). `cache_now_s` is the time caching items expire by."""
    matches = []
    et = event.event_type
    if et == "user.session.access_admin_app" and event.session:
        key = "soak-session:" + event.session
        if cache.get_string_set(key, cache_now_s):
            matches.append(("Soak.Session.Reuse",
                            "Session %s reused by %s" % (event.session, event.actor),
                            event.session, SPECS["Soak.Session.Reuse"]["severity"]))
        else:
            cache.put_string_set(key, [event.actor], event.time_s + SESSION_TTL_S, cache_now_s)
    if et == "user.authentication.auth_via_mfa" and event.outcome == "FAILURE":
        key = "soak-mfa:" + event.actor
        n = cache.increment_counter(key, 1, event.time_s + COUNTER_TTL_S, cache_now_s)
        if n >= COUNTER_LIMIT:
            cache.reset(key)
            matches.append(("Soak.MFA.Counter", "Repeated MFA failures for %s" % event.actor,
                            event.actor, SPECS["Soak.MFA.Counter"]["severity"]))
    if et == "user.session.start" and event.outcome == "FAILURE":
        severity = "CRITICAL" if event.actor.startswith("admin") else "MEDIUM"
        matches.append(("Soak.Login.Failures",
                        "Failed logins for %s (first from %s)" % (event.actor, event.ip),
                        event.actor, severity))
    if et == "policy.lifecycle.update":
        matches.append(("Soak.Policy.Changes", "Policy %s changed repeatedly" % event.policy,
                        event.policy, SPECS["Soak.Policy.Changes"]["severity"]))
    if et == "app.oauth2.token.grant":
        # Rule errors: the dedup string is the exception type.
        error = "FunctionReturnTypeError" if event.ip.endswith(".1") else "KeyError"
        matches.append(("Soak.Broken.Rule", "", error, SPECS["Soak.Broken.Rule"]["severity"]))
    if et == "user.account.lock":
        matches.append(("Soak.Account.Lock", "Account locked: %s" % event.actor, event.actor,
                        SPECS["Soak.Account.Lock"]["severity"]))
    return matches


class Window:
    __slots__ = ("start", "end", "period", "count", "latest", "first_event", "last_event",
                 "touched", "alert", "draft", "threshold", "samples")

    def __init__(self, start, end, period):
        self.start = start
        self.end = end
        self.period = period
        self.count = 0
        self.latest = None  # the newest match time (window clock)
        self.first_event = None  # min / max event time
        self.last_event = None
        self.touched = None  # the server clock of the last match
        self.alert = None  # the alert once created
        self.draft = None  # the first match in arrival order: (title, severity)
        self.threshold = None
        self.samples = []  # the first SAMPLE_EVENTS matches: (uuid, event time, p_parse_time)


class Model:
    """pantherd's alert engine, processed ids and the soak rules' cache."""

    def __init__(self, clock, cache_expiry, retentions_s=None):
        assert clock in ("event", "processing")
        self.clock = clock
        r = dict(DEFAULT_RETENTIONS_S, **(retentions_s or {}))
        self.processed_retention_s = r["processed"]
        self.window_retention_us = r["window"] * 1_000_000
        self.alert_log_retention_us = r["alert_log"] * 1_000_000
        self.cache = Caching(cache_expiry)
        self.groups = collections.defaultdict(list)  # (type, rule, dedup) -> [Window]
        self.processed = {}  # uuid -> expiry (seconds)
        # The newest state-clock time of an evaluated event: with the event
        # clock, the caching items' purge horizon is this minus the window
        # retention (docs/rule-contract.md, "The key-value space").
        self.window_retention_s = r["window"]
        self.kv_high_water_s = 0
        self.alerts = []  # every alert ever created (dicts, updated in place)
        self.changes = []  # (batch index, kind, alert snapshot)
        self.batch_index = 0

    # --- idempotence -----------------------------------------------------

    def _is_duplicate(self, uuid, now_s, in_batch):
        if uuid in in_batch:
            return True
        expiry = self.processed.get(uuid)
        return expiry is not None and expiry > now_s

    # --- windows ---------------------------------------------------------

    def _place(self, group, t, period):
        """The window a match at t joins (docs/alerting.md rules 1 to 3)."""
        windows = self.groups[group]
        for w in windows:  # 1. the window that contains t
            if w.start <= t < w.end:
                return w
        later = [w for w in windows if w.start > t]
        nxt = min(later, key=lambda w: w.start) if later else None
        if nxt is not None and nxt.latest < t + nxt.period:  # 2. move the next one back
            nxt.end = min(t + nxt.period, nxt.end)
            nxt.start = t
            return nxt
        end = t + period  # 3. a new window, cut short at the next one
        if nxt is not None:
            end = min(end, nxt.start)
        if self.clock == "processing":
            # A below-threshold window is discarded when the next one opens.
            self.groups[group] = windows = [
                w for w in windows if w.alert is not None or w.start > t]
        w = Window(t, end, period)
        windows.append(w)
        return w

    def ingest(self, events, clock_s):
        """One batch at server clock `clock_s`: returns (accepted, duplicates)."""
        self.batch_index += 1
        now_us = clock_s * 1_000_000
        accepted = duplicates = 0
        in_batch = set()
        changed = {}  # id(alert) -> (alert, created in this batch)
        for ev in events:
            # A duplicate is recognised before any rule runs on it.
            if self._is_duplicate(ev.uuid, clock_s, in_batch):
                duplicates += 1
                continue
            cache_now_s = ev.time_s if self.clock == "event" else clock_s
            self.kv_high_water_s = max(self.kv_high_water_s, cache_now_s)
            matches = evaluate_rules(ev, self.cache, cache_now_s)
            in_batch.add(ev.uuid)
            accepted += 1
            self.processed[ev.uuid] = clock_s + self.processed_retention_s
            for rule_id, title, dedup, severity in matches:
                spec = SPECS[rule_id]
                period = spec["period_min"] * 60 * 1_000_000
                t = ev.time_us if self.clock == "event" else now_us
                w = self._place((spec["type"], rule_id, dedup), t, period)
                w.count += 1
                w.latest = t if w.latest is None else max(w.latest, t)
                w.first_event = ev.time_us if w.first_event is None else min(w.first_event,
                                                                             ev.time_us)
                w.last_event = ev.time_us if w.last_event is None else max(w.last_event,
                                                                           ev.time_us)
                w.touched = now_us
                if len(w.samples) < SAMPLE_EVENTS:
                    w.samples.append((ev.uuid, ev.time_us, panther_time(clock_s)))
                if w.draft is None:
                    w.draft = (title, severity)
                    w.threshold = spec["threshold"]
                if w.alert is None and w.count >= spec["threshold"]:
                    w.alert = {
                        "type": spec["type"], "rule_id": rule_id, "title": w.draft[0],
                        "severity": "SEVERITY_" + w.draft[1], "dedup_string": dedup,
                        "threshold": w.threshold, "dedup_period_minutes": spec["period_min"],
                        "created_time": now_us, "log_types": ["Okta.SystemLog"],
                        "status": "ALERT_STATUS_OPEN", "assignee": "", "history": [],
                    }
                    for field in UNSPECIFIED_ERROR_FIELDS if spec["type"] == RULE_ERROR else ():
                        del w.alert[field]
                    self.alerts.append(w.alert)
                    changed[id(w.alert)] = (w.alert, True)
                elif w.alert is not None and id(w.alert) not in changed:
                    changed[id(w.alert)] = (w.alert, False)
                if w.alert is not None:
                    w.alert.update({
                        "event_count": w.count, "window_start": w.start, "window_end": w.end,
                        "first_event_time": w.first_event, "last_event_time": w.last_event,
                        "updated_time": now_us, "matched_events": list(w.samples),
                    })
        for alert, created in changed.values():
            self.changes.append((clock_s, "KIND_CREATED" if created else "KIND_UPDATED",
                                 dict(alert)))
        return accepted, duplicates

    def triage(self, alert, clock_s, status, assignee, comment, actor):
        """UpdateAlert: status and assignee set, a history entry appended,
        updated_time moved to the triage time (last_event_time stays), a
        KIND_TRIAGED change logged; the window is untouched."""
        alert["history"] = alert["history"] + [
            (clock_s * 1_000_000, actor, alert["status"], status, assignee, comment)]
        alert["status"] = status
        alert["assignee"] = assignee
        alert["updated_time"] = clock_s * 1_000_000
        self.changes.append((clock_s, "KIND_TRIAGED", dict(alert)))

    # --- what the store should hold --------------------------------------

    def windows(self):
        return [w for ws in self.groups.values() for w in ws]

    def expected_after_purge(self, now_s):
        """Drops what a purge at `now_s` deletes; returns the counts kept:
        processed ids, windows, alert-log entries, caching items."""
        now_us = now_s * 1_000_000
        self.processed = {u: e for u, e in self.processed.items() if e > now_s}
        for group, ws in self.groups.items():
            self.groups[group] = [
                w for w in ws
                if w.touched + max(self.window_retention_us, w.period) > now_us
                or (self.clock == "processing" and w.end > now_us)]
        self.changes = [c for c in self.changes
                        if c[0] * 1_000_000 >= now_us - self.alert_log_retention_us]
        if self.cache.expiry_enabled:
            horizon_s = now_s if self.clock == "processing" else (
                self.kv_high_water_s - self.window_retention_s if self.kv_high_water_s else 0)
            self.cache.items = {k: v for k, v in self.cache.items.items()
                                if v["expiry"] == 0 or v["expiry"] > horizon_s}
        return {
            "processed": len(self.processed),
            "dedup": len(self.windows()),
            "alert_log": len(self.changes),
            "kv": len(self.cache.items),
        }
