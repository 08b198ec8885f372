#!/usr/bin/python3
"""Soak test: a real pantherd through days of event time, against a model.

A real pantherd binary (real RocksDB in a temporary directory, real gRPC on
127.0.0.1, real rule workers) ingests generated Okta System Log events spread
over --days days (10 by default), in batches, with the processing clock
injected through --test-clock-file so that days pass in seconds; once with
the event window clock, once with the processing one. pantherd is restarted
half way, and one alert whose window later matches extend is resolved
(UpdateAlert) on the third day. Every batch's accepted/duplicate counts,
every alert (ListAlerts), what a StreamAlerts subscriber received, every
change in the alert log, the dedup windows, the processed ids and the
caching items are compared with model.py, an independent model of the
documented semantics. Then the clock jumps forward, pantherd's own periodic
purge runs, and the store (compacted) must hold exactly what has not
expired: fewer keys, fewer bytes, and nothing expired. See
docs/reliability.md, "Soak".

  soak_test.py --pantherd BIN --inspect BIN --stubs DIR --rules DIR
               [--clock event|processing|both] [--cache-expiry on|off]
               [--days N] [--scale N] [--seed N] [--workers N] [--keep]

--cache-expiry off models caching items that never expire (what pantherd
did before caching expiry followed the window clock: workers used the real
clock, and the soak's event times lie years ahead of it); on models items
expiring by the window clock. PANTHERD_SOAK_DAYS, PANTHERD_SOAK_SCALE,
PANTHERD_SOAK_SEED and PANTHERD_SOAK_WORKERS give the defaults of --days,
--scale, --seed and --workers (a longer variant: PANTHERD_SOAK_DAYS=30
PANTHERD_SOAK_SCALE=4). Exit status 0 when everything matched; 1 with the
differences on stderr otherwise (the temporary directory is then kept).
"""

import argparse
import collections
import datetime
import json
import os
import queue
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model as M  # noqa: E402

T0 = 1924992000  # 2031-01-01T00:00:00Z: years ahead of any real clock
BUCKET_S = 20 * 60  # events arriving in one 20-minute bucket form one batch
LOG_TYPE = "Okta.SystemLog"
FAMILIES = ("processed", "dedup", "alert_log", "kv", "alerts")

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print("FAIL: " + message, file=sys.stderr, flush=True)
    return condition


def iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z")


def micros(ts):
    return ts.seconds * 1_000_000 + ts.nanos // 1000


# --- the generated workload --------------------------------------------------


class Batch:
    def __init__(self, clock_s):
        self.clock_s = clock_s
        self.events = []


def generate(days, scale, seed, processed_retention_s):
    """Events over `days` days and the batches they arrive in, in order;
    some re-sent one day before and half a day after their ids expire."""
    rng = random.Random(seed)
    events = []

    def add(time_s, event_type, **fields):
        events.append(M.Event("soak-%07d" % len(events), time_s, event_type, **fields))

    admins = ["admin-1@soak.example", "admin-2@soak.example"]
    users = ["user-%d@soak.example" % i for i in range(6)]
    ips = ["10.0.%d.%d" % (i, j) for i in range(3) for j in range(1, 4)]
    policies = ["pol-%d" % i for i in range(5)]
    for day in range(days):
        base = T0 + day * 86400
        for _ in range(8 * scale):  # failed sign-in bursts: thresholds met and missed
            actor, t = rng.choice(admins + users), base + rng.randrange(86400)
            for _ in range(rng.randint(1, 7)):
                add(t, "user.session.start", actor=actor, ip=rng.choice(ips), outcome="FAILURE")
                t += rng.randint(120, 1500)
        for k in range(12 * scale):  # admin-app sessions seen again, within the TTL or not
            actor, t = rng.choice(users), base + rng.randrange(86400)
            session = "sess-%d-%d" % (day, k)
            for _ in range(rng.randint(1, 4)):
                add(t, "user.session.access_admin_app", actor=actor, ip=rng.choice(ips),
                    outcome="SUCCESS", session=session)
                t += rng.choice([rng.randint(300, 3600), rng.randint(3600, 4 * 3600)])
        for _ in range(8 * scale):  # MFA failures: counters reaching 3 or expiring first
            actor, t = rng.choice(users[:4]), base + rng.randrange(86400)
            for _ in range(rng.randint(1, 5)):
                outcome = "FAILURE" if rng.random() < 0.85 else "SUCCESS"
                add(t, "user.authentication.auth_via_mfa", actor=actor, ip=rng.choice(ips),
                    outcome=outcome)
                t += rng.randint(60, 1500)
        for policy in policies:  # policy updates: one-day windows across days
            for _ in range(rng.randint(0, 3)):
                add(base + rng.randrange(86400), "policy.lifecycle.update",
                    actor=rng.choice(admins), ip=rng.choice(ips), outcome="SUCCESS",
                    policy=policy)
        for _ in range(4 * scale):  # token grants a broken rule fails on: rule errors
            add(base + rng.randrange(86400), "app.oauth2.token.grant", actor=rng.choice(users),
                ip=rng.choice(ips), outcome="SUCCESS")
        for _ in range(3 * scale):  # lockouts: signals
            add(base + rng.randrange(86400), "user.account.lock", actor=rng.choice(users),
                ip=rng.choice(ips), outcome="SUCCESS")
        for _ in range(50 * scale):  # noise that no rule matches
            add(base + rng.randrange(86400),
                rng.choice(["user.session.start", "user.authentication.sso",
                            "system.api_token.create", "user.session.end"]),
                actor=rng.choice(admins + users), ip=rng.choice(ips), outcome="SUCCESS")

    # Arrival: most events within a minute, some up to 100 minutes late.
    arrivals = []
    for ev in events:
        late = rng.random() < 0.04
        arrivals.append((ev.time_s + (rng.randint(1200, 6000) if late else rng.randint(0, 60)),
                         ev))
    arrivals.sort(key=lambda a: (a[0], a[1].uuid))
    buckets = collections.OrderedDict()
    for arrival, ev in arrivals:
        bucket = arrival // BUCKET_S
        if bucket not in buckets:
            buckets[bucket] = Batch((bucket + 1) * BUCKET_S)
        buckets[bucket].events.append(ev)
    batches = list(buckets.values())
    where = {}
    for i, b in enumerate(batches):
        for ev in b.events:
            where[ev.uuid] = i

    def first_batch_at(clock_s):
        for i, b in enumerate(batches):
            if b.clock_s >= clock_s:
                return i
        return None

    # Re-sends. Events that no caching rule reads (the rules run on every
    # event, duplicates included), a few batches later: duplicates.
    resendable = [ev for ev in events if ev.event_type in (
        "user.session.start", "policy.lifecycle.update", "user.account.lock",
        "user.authentication.sso", "system.api_token.create", "user.session.end")]
    for ev in rng.sample(resendable, len(resendable) // 40):
        i = where[ev.uuid] + rng.randint(1, 3)
        if i < len(batches):
            batches[i].events.append(ev)
    # Noise re-sent a day before its id expires (a duplicate) and half a day
    # after (processed again).
    noise = [ev for ev in events if ev.time_s < T0 + 2 * 86400 and ev.event_type in (
        "user.authentication.sso", "system.api_token.create")]
    for delay in (processed_retention_s - 86400, processed_retention_s + 43200):
        for ev in rng.sample(noise, min(10 * scale, len(noise))):
            batches[first_batch_at(batches[where[ev.uuid]].clock_s + delay)].events.append(ev)
    # And one event twice in one batch.
    big = max(batches, key=lambda b: len(b.events))
    big.events.append(big.events[0])
    return events, batches


def event_json(ev):
    doc = {
        "uuid": ev.uuid,
        "published": iso(ev.time_s),
        "eventType": ev.event_type,
        "version": "0",
        "severity": "INFO",
        "displayMessage": ev.event_type,
        "actor": {"id": "00u" + ev.actor.split("@")[0], "type": "User",
                  "alternateId": ev.actor, "displayName": ev.actor},
        "client": {"ipAddress": ev.ip},
        "outcome": {"result": ev.outcome or "SUCCESS"},
    }
    if ev.session:
        doc["authenticationContext"] = {"externalSessionId": ev.session}
    if ev.policy:
        doc["target"] = [{"id": ev.policy, "type": "PolicyEntity", "alternateId": ev.policy}]
    return json.dumps(doc).encode()


# --- pantherd -------------------------------------------------------------


class Pantherd:
    """One pantherd on a data directory, restartable; its stderr is read by a
    thread so that the test can wait for log lines."""

    def __init__(self, args, work, clock_mode, retentions_s):
        self.args = args
        self.retentions_s = retentions_s
        self.data = os.path.join(work, "data")
        self.clock_file = os.path.join(work, "clock")
        self.log_path = os.path.join(work, "pantherd.log")
        self.clock_mode = clock_mode
        self.proc = None
        self.lines = queue.Queue()
        self.channel = None
        self.stub = None

    def set_clock(self, seconds):
        tmp = self.clock_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % seconds)
        os.replace(tmp, self.clock_file)

    def _read(self, proc, lines):
        with open(self.log_path, "a") as log:
            for raw in proc.stderr:
                line = raw.decode(errors="replace")
                log.write(line)
                log.flush()
                lines.put(line)
        lines.put(None)

    def wait_for(self, pattern, timeout):
        """The first log line (from now on) matching `pattern`: a match object."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("pantherd logged no line matching %r within %ds (log: %s)"
                                   % (pattern, timeout, self.log_path))
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("pantherd exited while waiting for %r (log: %s)"
                                   % (pattern, self.log_path))
            m = re.search(pattern, line)
            if m:
                return m

    def start(self):
        import grpc
        from pantherd.v1 import detection_service_pb2_grpc
        cmd = [self.args.pantherd, "--listen", "127.0.0.1:0", "--data-dir", self.data,
               "--processed-retention-seconds", str(self.retentions_s["processed"]),
               "--window-retention-seconds", str(self.retentions_s["window"]),
               "--alert-log-retention-seconds", str(self.retentions_s["alert_log"]),
               "--rules-dir", self.args.rules, "--auth", "none",
               "--workers", str(self.args.workers), "--purge-interval-seconds", "1",
               "--log-level", "debug", "--alert-sample-events", str(M.SAMPLE_EVENTS),
               "--window-clock", self.clock_mode, "--test-clock-file", self.clock_file]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self.lines), daemon=True).start()
        m = self.wait_for(r"msg=serving listen=(127\.0\.0\.1:\d+)", 120)
        self.address = m.group(1)
        self.channel = grpc.insecure_channel(self.address)
        self.stub = detection_service_pb2_grpc.DetectionServiceStub(self.channel)

    def stop(self):
        self.channel.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=120)
        self.proc.stderr.close()
        if code != 0:
            raise RuntimeError("pantherd exited with %d (log: %s)" % (code, self.log_path))

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def ingest(self, events, batch_id):
        from pantherd.v1 import sources_pb2
        request = sources_pb2.IngestEventsRequest(
            log_type=LOG_TYPE, events=[event_json(ev) for ev in events], batch_id=batch_id)
        import grpc
        try:
            responses = list(self.stub.IngestEvents(iter([request]), timeout=120))
        except grpc.RpcError as e:
            raise RuntimeError("batch %d refused: %s %s (log: %s)" % (
                batch_id, e.code(), e.details(), self.log_path)) from None
        assert len(responses) == 1, responses
        return responses[0]

    def list_alerts(self):
        """Every alert, whole: ListAlerts returns summaries (no matched
        events or history), so each is read again with GetAlert."""
        from pantherd.v1 import alerts_pb2, common_pb2
        alerts, token = [], ""
        while True:
            page = self.stub.ListAlerts(alerts_pb2.ListAlertsRequest(
                page=common_pb2.PageRequest(page_size=1000, page_token=token)), timeout=60)
            for summary in page.alerts:
                alerts.append(self.stub.GetAlert(
                    alerts_pb2.GetAlertRequest(id=summary.id), timeout=60).alert)
            token = page.next_page_token
            if not token:
                return alerts


class Subscriber:
    """A StreamAlerts subscriber for rule alerts (signals filtered out), kept
    across pantherd's restart: it resumes after the last sequence it got."""

    def __init__(self):
        self.changes = []  # (sequence, kind, alert fields)
        self.gaps = []
        self.cond = threading.Condition()
        self.channel = None
        self.thread = None

    def connect(self, address):
        import grpc
        from pantherd.v1 import alerts_pb2, detection_service_pb2_grpc
        self.channel = grpc.insecure_channel(address)
        stub = detection_service_pb2_grpc.DetectionServiceStub(self.channel)
        after = self.changes[-1][0] if self.changes else 0
        stream = stub.StreamAlerts(alerts_pb2.StreamAlertsRequest(
            types=[alerts_pb2.ALERT_TYPE_RULE], start_after_sequence=after))

        def read():
            try:
                for message in stream:
                    kind = message.WhichOneof("message")
                    with self.cond:
                        if kind == "change":
                            c = message.change
                            self.changes.append((c.sequence,
                                                 alerts_pb2.AlertChange.Kind.Name(c.kind),
                                                 canonical(alert_fields(c.alert))))
                        elif kind == "gap":
                            self.gaps.append(str(message.gap))
                        self.cond.notify_all()
            except grpc.RpcError:
                pass  # pantherd stopping, or the test closing the channel

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()

    def disconnect(self):
        self.channel.close()
        self.thread.join(timeout=60)

    def wait_for(self, count, timeout):
        with self.cond:
            self.cond.wait_for(lambda: len(self.changes) >= count, timeout)
            return len(self.changes)


def inspect(args, data_dir, dump=("processed", "dedup", "alert_log", "kv")):
    cmd = [args.inspect, data_dir, "--compact"]
    for family in dump:
        cmd += ["--dump", family]
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=300).stdout
    result = json.loads(out)
    rows = {family: [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in kv]
            for family, kv in result["dump"].items()}
    return result["families"], rows


# --- what pantherd said and stored, in the model's terms ----------------------


def alert_fields(a):
    from pantherd.v1 import alerts_pb2, common_pb2
    fields = {
        "type": alerts_pb2.AlertType.Name(a.type), "rule_id": a.rule_id, "title": a.title,
        "severity": common_pb2.Severity.Name(a.severity), "dedup_string": a.dedup_string,
        "threshold": a.threshold, "dedup_period_minutes": a.dedup_period_minutes,
        "created_time": micros(a.created_time), "updated_time": micros(a.updated_time),
        "log_types": list(a.log_types), "event_count": a.event_count,
        "window_start": micros(a.window_start), "window_end": micros(a.window_end),
        "first_event_time": micros(a.first_event_time),
        "last_event_time": micros(a.last_event_time),
        "status": alerts_pb2.AlertStatus.Name(a.status), "assignee": a.assignee,
        "history": [(micros(h.time), h.actor, alerts_pb2.AlertStatus.Name(h.old_status),
                     alerts_pb2.AlertStatus.Name(h.new_status), h.assignee, h.comment)
                    for h in a.history],
        "matched_events": [(e.event_id, micros(e.event_time), json.loads(e.json)["p_parse_time"])
                           for e in a.matched_events],
    }
    if fields["type"] == M.RULE_ERROR:
        for field in M.UNSPECIFIED_ERROR_FIELDS:
            del fields[field]
    return fields


def canonical(d):
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in d.items()))


def triage(server, m, clock_s, last_updates):
    """Resolves, through UpdateAlert and in the model, the first alert that
    later matches will update (`last_updates`: (rule, dedup, created time) ->
    last update time, from a dry run of the model): triage must not reset its
    window. False when there is no such alert yet."""
    from pantherd.v1 import alerts_pb2
    open_alerts = [a for a in m.alerts if a["type"] == M.RULE and last_updates[
        (a["rule_id"], a["dedup_string"], a["created_time"])] > clock_s * 1_000_000]
    if not open_alerts:
        return False  # try after the next batch
    target = open_alerts[0]
    ids = [a.id for a in server.list_alerts()
           if canonical(alert_fields(a)) == canonical(target)]
    if not check(len(ids) == 1, "the alert to triage is stored %d times: %s" % (
            len(ids), target)):
        return True
    server.stub.UpdateAlert(alerts_pb2.UpdateAlertRequest(
        id=ids[0], status=alerts_pb2.ALERT_STATUS_RESOLVED, assignee="soak",
        comment="resolved by the soak test"), timeout=60)
    m.triage(target, clock_s, "ALERT_STATUS_RESOLVED", "soak", "resolved by the soak test",
             "local")
    print("   resolved %s %s at %s (window until %s)" % (
        target["rule_id"], target["dedup_string"], iso(clock_s),
        iso(target["window_end"] // 1_000_000)), flush=True)
    return True


def compare_multisets(what, expected, actual, limit=8):
    e, a = collections.Counter(expected), collections.Counter(actual)
    missing, extra = list((e - a).elements()), list((a - e).elements())
    check(not missing and not extra,
          "%s: %d expected, %d stored; %d missing, %d unexpected" % (
              what, len(expected), len(actual), len(missing), len(extra)))
    for row in missing[:limit]:
        print("  missing:    %s" % (row,), file=sys.stderr)
    for row in extra[:limit]:
        print("  unexpected: %s" % (row,), file=sys.stderr)


def stored_changes(rows, with_sequence=False):
    from pantherd.v1 import alerts_pb2
    out, last_seq, last_time = [], 0, 0
    for key, value in rows:
        change = alerts_pb2.AlertChange.FromString(value)
        seq = struct.unpack(">Q", key)[0]
        t = micros(change.time)
        check(seq > last_seq and t >= last_time,
              "alert log out of order at sequence %d" % seq)
        last_seq, last_time = seq, t
        fields = alert_fields(change.alert)
        if with_sequence:
            if fields["type"] == M.RULE:
                out.append((seq, alerts_pb2.AlertChange.Kind.Name(change.kind),
                            canonical(fields)))
        else:
            out.append((t // 1_000_000, alerts_pb2.AlertChange.Kind.Name(change.kind),
                        canonical(fields)))
    return out


def model_changes(m):
    # The alert log carries matched events only on KIND_CREATED.
    return [(clock_s, kind, canonical(
        a if kind == "KIND_CREATED" else dict(a, matched_events=[])))
        for clock_s, kind, a in m.changes]


def stored_windows(rows):
    from pantherd.v1 import alerts_pb2
    out = []
    for _, value in rows:
        w = alerts_pb2.DedupWindow.FromString(value)
        out.append((alerts_pb2.AlertType.Name(w.type), w.rule_id, w.dedup_string,
                    micros(w.start), micros(w.end), w.event_count, micros(w.touched_time),
                    bool(w.alert_id)))
    return out


def model_windows(m, keep=lambda w: True):
    return [(g[0], g[1], g[2], w.start, w.end, w.count, w.touched, w.alert is not None)
            for g, ws in m.groups.items() for w in ws if keep(w)]


def stored_processed(rows):
    """log_type\\0<uuid> -> be64 expiry, then (16-byte records) i64 event time µs."""
    assert all(len(v) in (8, 16) for _, v in rows), "processed records are 8 or 16 bytes"
    return [(k.split(b"\0", 1)[1].decode(), struct.unpack(">Q", v[:8])[0]) for k, v in rows]


def stored_kv(rows):
    """caching\\0<key> -> be64 expiry, format 1, i64 counter, u32 n, members."""
    out = []
    for k, v in rows:
        expiry, fmt, counter, n = struct.unpack(">QBqI", v[:21])
        pos, members = 21, []
        for _ in range(n):
            (length,) = struct.unpack(">I", v[pos:pos + 4])
            members.append(v[pos + 4:pos + 4 + length].decode())
            pos += 4 + length
        out.append((k.split(b"\0", 1)[1].decode(), expiry, counter, tuple(sorted(members))))
    return out


def model_kv(m):
    return [(k, v["expiry"], v["counter"], tuple(sorted(v["set"])))
            for k, v in m.cache.items.items()]


# --- one run ----------------------------------------------------------------


def drive(args, server, m, batches, clock_mode, retentions_s):
    """Sends every batch at its clock, restarting pantherd half way and
    resolving one alert on the third day, while a subscriber streams rule
    alerts. Compares each batch's counts, then every alert and the stream."""
    server.set_clock(T0 - 3600)
    server.start()
    subscriber = Subscriber()
    subscriber.connect(server.address)
    restart_at = next(i for i, b in enumerate(batches)
                      if b.clock_s >= T0 + args.days * 86400 // 2)
    triage_at = next(i for i, b in enumerate(batches) if b.clock_s >= T0 + 3 * 86400)
    dry = M.Model(clock_mode, m.cache.expiry_enabled, retentions_s)
    for batch in batches:
        dry.ingest(batch.events, batch.clock_s)
    last_updates = {(a["rule_id"], a["dedup_string"], a["created_time"]): a["updated_time"]
                    for a in dry.alerts}
    triaged = False
    for i, batch in enumerate(batches):
        if i == restart_at:
            server.stop()  # ends the subscriber's stream too
            subscriber.thread.join(timeout=60)
            print("   restarted pantherd at %s (batch %d)" % (iso(batch.clock_s), i),
                  flush=True)
            server.start()
            subscriber.connect(server.address)
        server.set_clock(batch.clock_s)
        response = server.ingest(batch.events, i + 1)
        accepted, duplicates = m.ingest(batch.events, batch.clock_s)
        if not check((response.accepted, response.duplicates, len(response.rejected)) ==
                     (accepted, duplicates, 0),
                     "batch %d at %s: pantherd accepted %d, duplicates %d, rejected %s; "
                     "the model: %d, %d, none" % (
                         i, iso(batch.clock_s), response.accepted, response.duplicates,
                         [r.reason for r in response.rejected][:3], accepted, duplicates)):
            break
        if i >= triage_at and not triaged:
            triaged = triage(server, m, batch.clock_s, last_updates)
    check(triaged, "no alert that later matches update was found to triage")

    # Every alert, as ListAlerts returns it.
    compare_multisets("alerts", [canonical(a) for a in m.alerts],
                      [canonical(alert_fields(a)) for a in server.list_alerts()])
    streamed = sum(1 for c in m.changes if c[2]["type"] == M.RULE)
    got = subscriber.wait_for(streamed, 60)
    subscriber.disconnect()
    print("   a StreamAlerts subscriber (rule alerts) got %d changes across the restart"
          % got, flush=True)
    check(got == streamed and not subscriber.gaps,
          "the subscriber got %d rule-alert changes (gaps: %s); the model has %d" % (
              got, subscriber.gaps, streamed))
    kinds = collections.Counter(a["type"] for a in m.alerts)
    created_by_rule = collections.Counter(a["rule_id"] for a in m.alerts)
    below = sum(1 for w in m.windows() if w.alert is None)
    print("   model: %d alerts %s by rule %s; %d windows below threshold; %d caching "
          "items" % (len(m.alerts), dict(kinds), dict(created_by_rule), below,
                     len(m.cache.items)), flush=True)
    server.stop()
    return subscriber


def check_after_run(args, server, m, subscriber, end_s, clock_mode):
    """The stopped store after the run: the alert log exactly (and the stream
    equal to it); windows, processed ids and caching items at least as far as
    they have not expired (the periodic purge ran during the run with earlier
    clocks). Returns the families' sizes."""
    sizes, rows = inspect(args, server.data)
    end_us = end_s * 1_000_000
    changes = model_changes(m)
    retained = [c for c in changes if c[0] * 1_000_000 >= end_us - m.alert_log_retention_us]
    stored = stored_changes(rows["alert_log"])
    retained_set, changes_set = set(retained), set(changes)
    compare_multisets("alert-log changes not yet expired at the end (all present)", retained,
                      [c for c in stored if c in retained_set])
    compare_multisets("alert-log changes stored after the run (all known to the model)",
                      [c for c in stored if c in changes_set], stored)
    # The stream delivered every rule-alert change once, across the restart,
    # and in the log's order (as far as the log still holds them).
    compare_multisets("rule-alert changes streamed", [
        c[1:] for c in changes if dict(c[2])["type"] == M.RULE],
        [c[1:] for c in subscriber.changes])
    logged = stored_changes(rows["alert_log"], with_sequence=True)
    tail = subscriber.changes[len(subscriber.changes) - len(logged):] if logged else []
    check(tail == logged,
          "the stream differs from the alert log: %d streamed, %d logged, first difference "
          "at %s" % (len(subscriber.changes), len(logged), next(
              (i for i, (a, b) in enumerate(zip(tail, logged)) if a != b),
              min(len(tail), len(logged)))))
    live = model_windows(m, lambda w: w.touched + max(m.window_retention_us, w.period) > end_us
                         or (clock_mode == "processing" and w.end > end_us))
    stored = stored_windows(rows["dedup"])
    live_set, known_set = set(live), set(model_windows(m))
    compare_multisets("windows not yet expired at the end (all present)", live,
                      [w for w in stored if w in live_set])
    compare_multisets("windows stored after the run (all known to the model)",
                      [w for w in stored if w in known_set], stored)
    processed = stored_processed(rows["processed"])
    expected_processed = sorted(m.processed.items())
    expected_set = set(expected_processed)
    compare_multisets("processed ids not yet expired at the end (all present)",
                      [p for p in expected_processed if p[1] > end_s],
                      [p for p in processed if p[1] > end_s])
    compare_multisets("processed ids stored after the run (all known to the model)",
                      [p for p in processed if p in expected_set], processed)
    kv = stored_kv(rows["kv"])
    if m.cache.expiry_enabled:
        # Items not expired at the end are stored as the model has them; an
        # expired item may or may not be stored yet (deleted lazily, or by
        # the purge).
        compare_multisets("caching items not expired at the end",
                          [k for k in model_kv(m) if k[1] == 0 or k[1] > end_s],
                          [k for k in kv if k[1] == 0 or k[1] > end_s])
    else:
        compare_multisets("caching items", model_kv(m), kv)
    return sizes


def purge_and_check(args, server, m, end_s):
    """pantherd's own periodic purge with the clock moved forward, one day
    after the end (processed ids of the first days, windows untouched for the
    retention, every caching item), then 31 days after (all but the alerts
    themselves); the compacted store must hold exactly what the model keeps.
    Returns [(label, families' sizes)]."""
    sizes = []
    for label, purge_s in (("purge at end + 1 day", end_s + 86400),
                           ("purge at end + 31 days", end_s + 31 * 86400)):
        before = {"processed": len(m.processed), "dedup": len(m.windows()),
                  "alert_log": len(m.changes)}
        expected = m.expected_after_purge(purge_s)
        check(any(expected[f] < before[f] for f in before),
              "%s: the model expects nothing to be purged: the test proves nothing" % label)
        server.set_clock(purge_s)
        server.start()
        # The first purge after the start ran entirely at purge_s.
        server.wait_for(r'msg="purge finished" ok=true', 60)
        server.stop()
        families, rows = inspect(args, server.data)
        sizes.append((label, families))
        compare_multisets(label + ": processed ids", sorted(m.processed.items()),
                          stored_processed(rows["processed"]))
        compare_multisets(label + ": windows", model_windows(m), stored_windows(rows["dedup"]))
        compare_multisets(label + ": alert-log changes", model_changes(m),
                          stored_changes(rows["alert_log"]))
        if m.cache.expiry_enabled:
            compare_multisets(label + ": caching items", model_kv(m), stored_kv(rows["kv"]))
        # An alert and its newest-first index entry, never purged.
        check(families["alerts"]["keys"] == 2 * len(m.alerts),
              "%s: %d keys in alerts, expected %d" % (
                  label, families["alerts"]["keys"], 2 * len(m.alerts)))
    return sizes


def run(args, clock_mode, retentions_s):
    retentions_s = dict(M.DEFAULT_RETENTIONS_S, **retentions_s)
    events, batches = generate(args.days, args.scale, args.seed, retentions_s["processed"])
    print("== %s clock: %d events (%d sent, re-sends included) in %d batches over %d days, "
          "caching expiry %s, retentions (days) %s" % (
              clock_mode, len(events), sum(len(b.events) for b in batches), len(batches),
              args.days, args.cache_expiry,
              {k: v / 86400 for k, v in sorted(retentions_s.items())}), flush=True)
    work = tempfile.mkdtemp(prefix="pantherd-soak-")
    server = Pantherd(args, work, clock_mode, retentions_s)
    m = M.Model(clock_mode, cache_expiry=args.cache_expiry == "on", retentions_s=retentions_s)
    started = time.monotonic()
    try:
        subscriber = drive(args, server, m, batches, clock_mode, retentions_s)
        ingest_seconds = time.monotonic() - started
        end_s = batches[-1].clock_s
        sizes = [("after the run", check_after_run(args, server, m, subscriber, end_s,
                                                   clock_mode))]
        sizes += purge_and_check(args, server, m, end_s)
        # Nothing expired is kept, not even in the files: what the last purge
        # emptied takes no bytes once compacted.
        last = sizes[-1][1]
        # Caching items: with the processing clock all have expired by then;
        # with the event clock those within the window retention of the
        # newest event time stay (late events may still read them), exactly
        # as the model keeps them (compared above).
        emptied = ["processed", "dedup", "alert_log"] + (
            ["kv"] if m.cache.expiry_enabled and clock_mode == "processing" else [])
        for family in emptied:
            check(last[family]["keys"] == 0 and last[family]["sst_bytes"] == 0,
                  "after the last purge and a compaction, %s holds %d keys in %d bytes" % (
                      family, last[family]["keys"], last[family]["sst_bytes"]))
        for family in ("processed", "dedup", "alert_log"):
            check(sizes[0][1][family]["sst_bytes"] > last[family]["sst_bytes"],
                  "%s did not shrink: %d bytes after the run, %d after the purges" % (
                      family, sizes[0][1][family]["sst_bytes"], last[family]["sst_bytes"]))
        print("   store (compacted), keys / bytes per family:", flush=True)
        for label, families in sizes:
            print("     %-24s %s" % (label, "  ".join(
                "%s %d/%d" % (f, families[f]["keys"], families[f]["sst_bytes"])
                for f in FAMILIES)), flush=True)
        print("   %s clock: ingestion and alerts %.1fs, total %.1fs" % (
            clock_mode, ingest_seconds, time.monotonic() - started), flush=True)
    finally:
        server.kill()
        if failures or args.keep:
            print("   kept %s" % work, file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pantherd", required=True)
    parser.add_argument("--inspect", required=True, help="the pantherd-soak-inspect program")
    parser.add_argument("--stubs", required=True, help="folder of the generated Python stubs")
    parser.add_argument("--rules", required=True, help="tests/soak/rules")
    parser.add_argument("--clock", choices=["event", "processing", "both"], default="both")
    parser.add_argument("--cache-expiry", choices=["on", "off"], default="on")
    parser.add_argument("--days", type=int, default=int(os.environ.get("PANTHERD_SOAK_DAYS", 10)))
    parser.add_argument("--scale", type=int,
                        default=int(os.environ.get("PANTHERD_SOAK_SCALE", 1)),
                        help="multiplies the events per day")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("PANTHERD_SOAK_SEED", 13)))
    parser.add_argument("--workers", type=int,
                        default=int(os.environ.get("PANTHERD_SOAK_WORKERS", 1)))
    parser.add_argument("--keep", action="store_true", help="keep the temporary directories")
    args = parser.parse_args()
    sys.path.insert(0, args.stubs)
    if args.days < 10:
        print("soak_test: --days must be at least 10 (retention is 7 days)", file=sys.stderr)
        return 2

    print("soak: %d days, scale %d, seed %d" % (args.days, args.scale, args.seed), flush=True)
    # The event clock with the default retentions; the processing clock with
    # shorter ones (flags), so that both the defaults and the flags are held
    # to the model.
    if args.clock in ("event", "both"):
        run(args, "event", {})
    if args.clock in ("processing", "both"):
        run(args, "processing", {"processed": 5 * 86400, "window": 3 * 86400,
                                 "alert_log": 9 * 86400})
    if failures:
        print("soak: %d check(s) failed" % len(failures), file=sys.stderr)
        return 1
    print("soak: everything matched the model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
