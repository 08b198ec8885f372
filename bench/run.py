#!/usr/bin/python3
"""pantherd benchmark: the same Okta events through the Panther-style Python reference
and through a real pantherd, with speed, latency, memory and an exact alert comparison.

Steps (docs/performance.md explains each figure):
  1. generate N events with okta_gen.py (seeded: the same seed gives the same bytes);
  2. run reference.py on them (one process, one core);
  3. for each worker count: start build/server/pantherd (temporary data dir, port 0),
     upload the rule folder with pantherctl, send the events with pantherd-bench-send
     (one IngestEvents stream per worker, events sharded so that everything one piece
     of rule state depends on stays in one stream, in time order), read the alerts back
     with `pantherctl alerts list`, stop it, and compare the alerts with the reference's
     (type, rule id, dedup string, window start, event count);
  4. pieces: the same ingestion with no rules uploaded (parse, normalise, dedup of
     event ids, one durable write per batch: everything but Python);
  5. latency probe: events sent one per batch, one at a time, to a server with the rules;
  6. alert latency (--latency-rate, on by default): the events paced at that rate over one
     stream while a StreamAlerts subscriber in the sending process times the arrival of
     every alert change against its batch's write and acknowledgement; once with the
     rule folder, once with a generated rule that alerts on ~1.2% of events;
  7. memory (--windows N): N events through a rule that opens one live dedup window per
     event, against the same events in a single window: peak RSS and events/s.

Builds nothing: it uses the programs of an existing build directory (--build, default
./build). Exit status: 0 when every run produced exactly the reference's alerts, 1 when
any differs (the differences are printed), 2 for usage or setup errors (a latency run
whose subscriber misses an alert change is one: pantherd-bench-send fails).
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"

# Event types whose rule state is per user; failed sign-ins are keyed by source IP
# (the state of the password-spray and failed-login rules); everything else is rare
# and goes to stream 0. See shard_of().
PER_USER_TYPES = frozenset((
    "user.session.start", "user.authentication.sso", "user.authentication.auth_via_mfa",
    "policy.evaluate_sign_on", "user.authentication.verify", "user.session.end",
    "app.oauth2.authorize.code", "user.mfa.okta_verify.deny_push",
    "user.session.access_admin_app",
))


class SetupError(Exception):
    pass


def log(message):
    print(message, file=sys.stderr, flush=True)


def shard_of(event, streams):
    """The stream an event goes to. Rules keep state (detection cache, dedup windows)
    per user, per session or per source IP; concurrent streams must not reorder the
    events one piece of state depends on, so: failed sign-ins by source IP, the
    high-volume per-user events by actor id, everything else to stream 0."""
    if streams == 1:
        return 0
    etype = event.get("eventType")
    outcome = event.get("outcome") or {}
    if etype == "user.session.start" and outcome.get("result") == "FAILURE":
        key = "ip:" + str((event.get("client") or {}).get("ipAddress"))
    elif etype in PER_USER_TYPES:
        key = "actor:" + str((event.get("actor") or {}).get("id"))
    else:
        return 0
    return zlib.crc32(key.encode()) % streams


def write_shards(events_path, streams, work):
    paths = [os.path.join(work, f"events-{streams}-{i}.jsonl") for i in range(streams)]
    if streams == 1:
        return [events_path]
    outs = [open(p, "wb") for p in paths]
    try:
        with open(events_path, "rb") as f:
            for line in f:
                if line.strip():
                    outs[shard_of(json.loads(line), streams)].write(line)
    finally:
        for out in outs:
            out.close()
    return paths


# ---------------------------------------------------------------------------
# pantherd processes


def process_tree(pid):
    """pid and every descendant (pantherd and its workers)."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode("latin-1")
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(children.get(p, ()))
    return tree


def rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("latin-1")
        fields = stat[stat.rindex(")") + 2:].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class Sampler(threading.Thread):
    """Samples the RSS (sum over pantherd and its workers) and the CPU time of each
    process of the tree every 50 ms; keeps the peak and each process's last CPU time
    (a worker's time is lost if it exits between samples)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.cpu = {}
        self.stop_event = threading.Event()
        self.tree = []
        self.samples = 0

    def sample(self, rescan=False):
        # Listing every process is the expensive part: do it once a second.
        if rescan or self.samples % 20 == 0:
            self.tree = process_tree(self.pid)
        self.samples += 1
        self.peak_kb = max(self.peak_kb, sum(rss_kb(p) for p in self.tree))
        for p in self.tree:
            self.cpu[p] = max(self.cpu.get(p, 0.0), cpu_seconds(p))

    def run(self):
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(0.05)

    def finish(self):
        self.stop_event.set()
        self.join()
        self.sample(rescan=True)
        return self.peak_kb, sum(self.cpu.values())


class Pantherd:
    def __init__(self, build, work, name, workers, data_root=None, extra=()):
        self.build = build
        self.data = os.path.join(data_root or work, f"data-{name}")
        self.remove_data = data_root is not None
        self.log_path = os.path.join(work, f"pantherd-{name}.log")
        shutil.rmtree(self.data, ignore_errors=True)
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [os.path.join(build, "server", "pantherd"), "--listen", "127.0.0.1:0",
             "--data-dir", self.data, "--workers", str(workers), "--log-level", "info",
             "--metrics-listen", "127.0.0.1:0"] + list(extra),
            stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        self.address = None
        # The first start writes the admin's API token here.
        self.token_file = os.path.join(self.data, "admin.token")
        while time.time() < deadline:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            m = re.search(r"msg=serving listen=(\S+)", text)
            if m:
                self.address = m.group(1)
                # Logged before "serving": pantherd's own figures (docs/metrics.md).
                metrics = re.search(r"msg=metrics listen=(\S+)", text)
                self.metrics_address = metrics.group(1) if metrics else None
                break
            if self.proc.poll() is not None:
                raise SetupError(f"pantherd exited with code {self.proc.returncode}:\n{text}")
            time.sleep(0.02)
        if self.address is None:
            self.stop()
            raise SetupError("pantherd did not start serving within 60 s")

    def scrape(self):
        """pantherd's /metrics as {"name{labels}": float}; None when unavailable."""
        if not self.metrics_address:
            return None
        try:
            with urllib.request.urlopen(f"http://{self.metrics_address}/metrics",
                                        timeout=30) as answer:
                text = answer.read().decode("utf-8", "replace")
        except OSError as exc:
            log(f"run.py: could not read pantherd's metrics: {exc}")
            return None
        samples = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, value = line.rpartition(" ")
            try:
                samples[key] = float(value)
            except ValueError:
                continue
        return samples

    def ctl(self, *args, timeout=600):
        cmd = [os.path.join(self.build, "client", "pantherctl"), "--server", self.address,
               "--token-file", self.token_file, *args]
        done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode(
            "utf-8", "replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()
        # The store once closed (memtables flushed into compressed files).
        self.closed_bytes = directory_bytes(self.data)
        if self.remove_data:
            shutil.rmtree(self.data, ignore_errors=True)


def directory_bytes(path):
    total = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def parse_timestamp_us(text):
    """Protobuf JSON timestamp ("2026-03-02T07:00:00.432Z") -> microseconds."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    if not m:
        raise ValueError(f"unexpected timestamp {text!r}")
    import calendar  # pylint: disable=import-outside-toplevel

    secs = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = (m.group(2) or "") + "000000"
    return secs * 1000000 + int(frac[:6])


def read_alerts(server):
    code, out, err = server.ctl("--output", "json", "alerts", "list", "--limit", "1000000")
    if code != 0:
        raise SetupError(f"pantherctl alerts list failed ({code}): {err.strip()}")
    alerts = []
    for alert in json.loads(out).get("alerts", []):
        alerts.append({
            "type": alert.get("type", "ALERT_TYPE_RULE").replace("ALERT_TYPE_", ""),
            "rule_id": alert.get("ruleId", ""),
            "dedup": alert.get("dedupString", ""),
            "window_start_us": parse_timestamp_us(alert["windowStart"]),
            "event_count": int(alert.get("eventCount", 0)),
        })
    return alerts


def alert_key(alert):
    return (alert["type"], alert["rule_id"], alert["dedup"], alert["window_start_us"],
            alert["event_count"])


def compare(reference, got):
    """(identical, lines describing the differences)."""
    want = sorted(alert_key(a) for a in reference)
    have = sorted(alert_key(a) for a in got)
    if want == have:
        return True, []
    lines = []
    ws, hs = set(want), set(have)
    for key in want:
        if key not in hs:
            lines.append(f"  only in reference: {fmt_key(key)}")
    for key in have:
        if key not in ws:
            lines.append(f"  only in pantherd:  {fmt_key(key)}")
    if len(want) != len(set(want)) or len(have) != len(set(have)):
        lines.append("  (duplicate alerts on one side)")
    return False, lines


def fmt_key(key):
    kind, rule, dedup, start_us, count = key
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(start_us // 1000000))
    return f"{kind} {rule} dedup={dedup!r} window_start={start}.{start_us % 1000000:06d}Z events={count}"


def send(build, server, files, batch_size, window, extra=()):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [os.path.join(build, "bench", "pantherd-bench-send"), "--server", server.address,
         "--token-file", server.token_file,
         "--batch-size", str(batch_size), "--window", str(window), *extra, *files],
        capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SetupError("pantherd-bench-send failed: " + done.stderr.decode().strip())
    result = json.loads(done.stdout)
    result["client_cpu_seconds"] = (after.ru_utime - before.ru_utime) + (
        after.ru_stime - before.ru_stime)
    return result


def replay_figures(server, rules, alerts):
    """Replays `rules` over every stored event (`pantherctl replay`, an isolated worker at
    a lower priority) on a server that ingested them with those rules, and compares the
    alerts per rule with `alerts`, what live ingestion produced."""
    t0 = time.time()
    code, out, err = server.ctl("--output", "json", "replay", rules, "--since", "3650d",
                                timeout=3600)
    seconds = time.time() - t0
    if code != 0:
        raise SetupError(f"pantherctl replay failed ({code}): {err.strip()}")
    answer = json.loads(out)
    replayed = {r["ruleId"]: int(r.get("alerts", 0)) for r in answer.get("rules", [])}
    live = {}
    for alert in alerts:
        live[alert["rule_id"]] = live.get(alert["rule_id"], 0) + 1
    differ = sorted(rule for rule in set(replayed) | set(live)
                    if replayed.get(rule, 0) != live.get(rule, 0))
    return {
        "events": int(answer.get("events", 0)),
        "events_per_second": float(answer.get("eventsPerSecond", 0)),
        "seconds": seconds,
        "alerts": int(answer.get("alertsTotal", 0)),
        "live_alerts": len(alerts),
        "rules_differing": differ,
    }


def replay_impact(args, server, rules, n_events):
    """How much replays slow live ingestion: the same server ingests two more generated
    files of `n_events`, one alone and one while replays of `rules` over the stored
    events run back to back (each in its own isolated worker at niceness 10)."""
    alone_path, _ = generate_events(args, n_events, args.seed + 2000)
    during_path, _ = generate_events(args, n_events, args.seed + 3000)
    alone = send(args.build, server, [alone_path], args.batch_size, args.window)
    stop = threading.Event()
    replays = {"done": 0, "failed": 0, "events_per_second": []}

    def replay_loop():
        while not stop.is_set():
            code, out, _ = server.ctl("--output", "json", "replay", rules, "--since", "3650d",
                                      timeout=3600)
            if code != 0:
                replays["failed"] += 1
                continue
            replays["done"] += 1
            replays["events_per_second"].append(float(json.loads(out).get("eventsPerSecond", 0)))

    thread = threading.Thread(target=replay_loop)
    thread.start()
    time.sleep(1.0)  # the first replay is under way
    try:
        during = send(args.build, server, [during_path], args.batch_size, args.window)
    finally:
        stop.set()
        thread.join()
    return {
        "live_events_per_second_alone": alone["events_per_second"],
        "live_events_per_second_during_replays": during["events_per_second"],
        "slowdown_percent": 100.0 * (1 - during["events_per_second"] /
                                     alone["events_per_second"]),
        "replays": replays["done"],
        "replays_failed": replays["failed"],
        "replay_events_per_second": replays["events_per_second"],
    }


def run_pantherd(args, name, workers, files, rules, n_events, send_flags=(), read_back=True,
                 event_retention=None, replay=False):
    """One pantherd run: start, upload `rules` (None: no rules), send `files` (with
    `send_flags` for pantherd-bench-send), read alerts (unless `read_back` is false),
    stop. Returns a dict of figures and the alerts.

    The generated events are dated (--start), often further back than pantherd's
    default event retention: so that every run stores every event, as a live
    server stores its recent ones, runs use --event-retention 36500d unless
    `event_retention` says otherwise ("0": store none)."""
    retention = event_retention if event_retention is not None else "36500d"
    server = Pantherd(args.build, args.work, name, workers, args.data_root,
                      extra=("--event-retention", retention))
    try:
        upload_seconds = None
        if rules is not None:
            t0 = time.time()
            upload = ["upload", rules] + (["--skip-tests"] if args.skip_tests else [])
            code, out, err = server.ctl(*upload)
            upload_seconds = time.time() - t0
            if code != 0:
                raise SetupError(f"pantherctl upload {rules} failed ({code}):\n{out}{err}")
        sampler = Sampler(server.proc.pid)
        sampler.sample()
        cpu_before = sum(sampler.cpu.values())
        sampler.start()
        sent = send(args.build, server, files, args.batch_size, args.window, send_flags)
        peak_kb, cpu_after = sampler.finish()
        end_kb = sum(rss_kb(p) for p in process_tree(server.proc.pid))
        data_bytes = directory_bytes(server.data)
        alerts = read_alerts(server) if read_back else []
        own = summarize_metrics(server.scrape())
        replayed = replay_figures(server, rules, alerts) if replay and rules else None
        if replayed is not None and not args.no_replay_impact:
            replayed["impact"] = replay_impact(args, server, rules, n_events)
    finally:
        server.stop()
    closed_bytes = getattr(server, "closed_bytes", 0)
    if sent["accepted"] != n_events:
        raise SetupError(f"{name}: pantherd accepted {sent['accepted']} of {n_events} events "
                         f"({sent['duplicates']} duplicates, {sent['rejected']} rejected)")
    server_cpu = cpu_after - cpu_before
    return {
        "name": name,
        "workers": workers,
        "streams": len(files),
        "upload_seconds": upload_seconds,
        "events_per_second": sent["events_per_second"],
        "seconds": sent["seconds"],
        "batch_latency_us": sent["batch_latency_us"],
        "batch_size": args.batch_size,
        "window": args.window,
        "peak_rss_mb": peak_kb / 1024.0,
        "end_rss_mb": end_kb / 1024.0,
        "data_mb": data_bytes / 1e6,
        "closed_data_mb": closed_bytes / 1e6,
        "sender": sent,
        "server_cpu_seconds": server_cpu,
        "client_cpu_seconds": sent["client_cpu_seconds"],
        "events_per_server_cpu_second": n_events / server_cpu if server_cpu > 0 else None,
        "metrics": own,
        "replay": replayed,
    }, alerts


def summarize_metrics(samples, top=5):
    """The event counts and the rules that took the most time, from a /metrics scrape."""
    if samples is None:
        return None
    label = re.compile(r'^(\w+)\{(\w+)="((?:[^"\\]|\\.)*)"\}$')
    rejected, rules = {}, {}
    for key, value in samples.items():
        m = label.match(key)
        if not m:
            continue
        name, _, what = m.groups()
        if name == "pantherd_events_rejected_total":
            rejected[what] = int(value)
        elif name.startswith("pantherd_rule_"):
            field = name[len("pantherd_rule_"):-len("_total")]
            rules.setdefault(what, {})[field] = value
    by_time = sorted(rules.items(), key=lambda kv: -kv[1].get("seconds", 0.0))
    return {
        "events_accepted": int(samples.get("pantherd_events_accepted_total", 0)),
        "events_duplicate": int(samples.get("pantherd_events_duplicate_total", 0)),
        "events_rejected": rejected,
        "batches": int(samples.get("pantherd_ingest_batches_total", 0)),
        "rule_seconds": sum(r.get("seconds", 0.0) for r in rules.values()),
        "rule_evaluations": int(sum(r.get("evaluations", 0) for r in rules.values())),
        "top_rules": [{"rule": rule, **{k: (int(v) if k != "seconds" else v)
                                        for k, v in figures.items()}}
                      for rule, figures in by_time[:top]],
        "worker_restarts": int(samples.get("pantherd_worker_restarts_total", 0)),
    }


# Third-party rules left out of --panther-analysis runs, and why. Both sides run them
# correctly; their output is not a function of the event.
NONDETERMINISTIC_RULES = {
    # title() iterates set literals ({"ASO", value}): the order depends on the
    # interpreter's string-hash seed, so the title (the dedup string) differs
    # between any two processes, on Panther too.
    "okta_anonymizing_vpn_login",
}
PANTHER_ANALYSIS_FILES = (
    "global_helpers/panther_base_helpers",
    "global_helpers/panther_okta_helpers",
    "global_helpers/panther_event_type_helpers",
    "data_models/okta_data_model",
)


def panther_analysis_folder(checkout, work_dir):
    """Copies the Okta rules of a panther-analysis checkout, with the globals and the
    data model they import, into a folder under `work_dir`; returns its path."""
    target = os.path.join(work_dir, "panther-analysis-okta")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(os.path.join(target, "okta_rules"))
    for stem in PANTHER_ANALYSIS_FILES:
        dest = os.path.join(target, os.path.dirname(stem))
        os.makedirs(dest, exist_ok=True)
        for ext in (".py", ".yml"):
            shutil.copy(os.path.join(checkout, stem + ext), dest)
    rules = os.path.join(checkout, "rules", "okta_rules")
    for name in sorted(os.listdir(rules)):
        stem, ext = os.path.splitext(name)
        if ext in (".py", ".yml") and stem not in NONDETERMINISTIC_RULES:
            shutil.copy(os.path.join(rules, name), os.path.join(target, "okta_rules"))
    return target


# ---------------------------------------------------------------------------
# Generated rule folders for the latency and memory runs


def write_rule(folder, stem, rule_id, source, threshold, period_minutes, tests):
    """Writes `stem`.py and `stem`.yml (one Okta rule) into `folder`."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, stem + ".py"), "w") as f:
        f.write(source)
    lines = [
        "AnalysisType: rule",
        f"Filename: {stem}.py",
        f"RuleID: {rule_id}",
        "Enabled: true",
        "LogTypes:",
        "  - Okta.SystemLog",
        "Severity: Info",
        f"DedupPeriodMinutes: {period_minutes}",
        f"Threshold: {threshold}",
        "Tests:",
    ]
    for name, uuid, expected in tests:
        lines += [f"  - Name: {name}", f"    ExpectedResult: {'true' if expected else 'false'}",
                  "    Log:", f"      uuid: {uuid}", "      eventType: user.session.start",
                  "      published: '2026-03-02T07:00:00.000Z'"]
    with open(os.path.join(folder, stem + ".yml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return folder


# Matches about 1.2% of events (the last two hex digits of the uuid below 3, i.e.
# 3 in 256), each into its own alert: every match is an alert change.
ONE_PERCENT_SOURCE = '''def rule(event):
    uuid = event.get("uuid") or ""
    try:
        return int(uuid[-2:], 16) < 3
    except ValueError:
        return False


def title(event):
    return "bench: event " + (event.get("uuid") or "")


def dedup(event):
    return event.get("uuid") or ""
'''


def one_percent_folder(work):
    """A folder with one rule matching ~1.2% of events, threshold 1, dedup by uuid."""
    return write_rule(os.path.join(work, "rules-one-percent"), "bench_one_percent",
                      "Bench.OnePercent", ONE_PERCENT_SOURCE, 1, 60,
                      [("last digits 02 match", "c3a1e9f0-0000-4000-8000-000000000002", True),
                       ("last digits 03 do not", "c3a1e9f0-0000-4000-8000-000000000003", False)])


# Matches every event and never alerts: the threshold is out of reach, the period
# (a week) keeps every window open. The dedup string is the event's uuid (one window
# per event) or a constant (one window in all).
WINDOWS_THRESHOLD = 1000000000
WINDOWS_PERIOD_MINUTES = 7 * 24 * 60


def windows_folder(work, per_event):
    source = ('''def rule(event):
    return True


def dedup(event):
    return ''' + ('event.get("uuid") or ""' if per_event else '"one window"') + "\n")
    name = "per-event" if per_event else "one"
    return write_rule(os.path.join(work, f"rules-windows-{name}"), "bench_windows",
                      "Bench.Windows", source, WINDOWS_THRESHOLD, WINDOWS_PERIOD_MINUTES,
                      [("every event matches", "c3a1e9f0-0000-4000-8000-000000000001", True)])


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Benchmark pantherd against a Panther-style Python reference.",
        epilog="See docs/performance.md.")
    parser.add_argument("--build", default="build", help="pantherd build directory (./build)")
    parser.add_argument("--rules", default=os.path.join(REPO, "rules"),
                        help="rule folder (default: the bundled pack)")
    parser.add_argument("--panther-analysis", metavar="CHECKOUT",
                        help="instead of --rules: the Okta rules of a panther-analysis checkout "
                             "with the helpers and data model they use")
    parser.add_argument("--events", type=int, default=200000, help="events to generate")
    parser.add_argument("--seed", type=int, default=1, help="generator seed")
    parser.add_argument("--events-file", help="use these events instead of generating")
    parser.add_argument("--workers", default="1,all",
                        help="comma-separated worker counts; 'all' is one per core (1,all)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per batch (500)")
    parser.add_argument("--window", type=int, default=4, help="batches in flight per stream (4)")
    parser.add_argument("--skip-tests", action="store_true", help="upload with --skip-tests")
    parser.add_argument("--no-pieces", action="store_true", help="skip the no-rules run")
    parser.add_argument("--store-cost-pairs", type=int, default=0, metavar="N",
                        help="measure the event store's cost with N pairs of no-rules runs "
                             "(stored, not stored), interleaved, the order alternating; the "
                             "cost is the median pair's. Also runs with --no-main (default: "
                             "one pair, in the no-rules piece)")
    parser.add_argument("--no-replay-impact", action="store_true",
                        help="skip measuring live ingestion while replays run")
    parser.add_argument("--no-latency-probe", action="store_true",
                        help="skip the one-event-per-batch latency probe")
    parser.add_argument("--probe-events", type=int, default=2000,
                        help="events of the latency probe (2000)")
    parser.add_argument("--no-main", action="store_true",
                        help="skip the reference, the throughput runs, the no-rules run and "
                             "the probe (e.g. to run only --windows or the alert latency)")
    parser.add_argument("--latency-rate", type=float, default=5000,
                        help="events/s of the alert-latency runs (paced sending with a "
                             "StreamAlerts subscriber); 0 skips them (5000)")
    parser.add_argument("--latency-events", type=int,
                        help="events of each alert-latency run (default: all the events)")
    parser.add_argument("--latency-batch-size", type=int, default=50,
                        help="events per batch of the alert-latency runs (50)")
    parser.add_argument("--latency-window", type=int, default=100,
                        help="batches in flight at most in the alert-latency runs (100)")
    parser.add_argument("--latency-workers", default="all",
                        help="workers of the alert-latency runs ('all': one per core)")
    parser.add_argument("--windows", type=int, default=0, metavar="N",
                        help="memory runs: N events each opening a live dedup window, against "
                             "the same N events in one window (0: skip)")
    parser.add_argument("--windows-workers", default="all",
                        help="workers of the --windows runs ('all': one per core)")
    parser.add_argument("--work-dir", help="keep generated files and logs here")
    parser.add_argument("--data-root",
                        help="put pantherd's data directories here instead of the work "
                             "directory (e.g. a tmpfs, to see what durable writes cost)")
    parser.add_argument("--json", help="also write every figure to this file")
    args = parser.parse_args(argv)

    args.build = os.path.abspath(args.build)
    for program in ("server/pantherd", "server/pantherd-worker", "client/pantherctl",
                    "bench/pantherd-bench-send"):
        if not os.access(os.path.join(args.build, program), os.X_OK):
            log(f"run.py: {os.path.join(args.build, program)} is missing; build first, e.g. "
                f"cmake --build {args.build} --target pantherd pantherctl pantherd-bench-send")
            return 2
    if not args.panther_analysis and not os.path.isdir(args.rules):
        log(f"run.py: rule folder {args.rules} does not exist")
        return 2
    args.rules = os.path.abspath(args.rules)
    cores = os.cpu_count() or 1
    try:
        worker_counts = [cores if w.strip() == "all" else int(w) for w in args.workers.split(",")]
    except ValueError:
        log(f"run.py: --workers {args.workers!r}: expected numbers or 'all'")
        return 2
    worker_counts = list(dict.fromkeys(w for w in worker_counts if w > 0))

    temp = None
    if args.work_dir:
        os.makedirs(args.work_dir, exist_ok=True)
        args.work = os.path.abspath(args.work_dir)
    else:
        temp = tempfile.mkdtemp(prefix="pantherd-bench-")
        args.work = temp
    try:
        if args.panther_analysis:
            try:
                args.rules = panther_analysis_folder(args.panther_analysis, args.work)
            except OSError as exc:
                raise SetupError(f"--panther-analysis: {exc}") from exc
        return run(args, worker_counts, cores)
    except SetupError as exc:
        log(f"run.py: {exc}")
        return 2
    finally:
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def measure_event_store(args, events_path, n_events, figures, pairs):
    """The cost of the event store: `pairs` pairs of no-rules runs on the same events,
    one storing every event as pantherd does by default, one with --event-retention 0.
    The two runs of a pair follow each other, the order alternating from pair to pair,
    so that a slow spell of a shared machine weighs on both sides; the cost is the
    median of the pairs' costs. Adds the runs and figures["event_store"]."""
    log(f"running pantherd with no rules, storing events and not, {pairs} pair(s)")
    pair_figures = []
    for k in range(pairs):
        order = ("stored", "bare") if k % 2 == 0 else ("bare", "stored")
        runs = {}
        for which in order:
            if which == "stored":
                result, alerts = run_pantherd(args, "norules-w1", 1, [events_path], None,
                                              n_events)
                result["alerts"] = len(alerts)
            else:
                result, _ = run_pantherd(args, "norules-nostore-w1", 1, [events_path], None,
                                         n_events, event_retention="0")
                result["alerts"] = 0
            result["alerts_identical"] = None
            runs[which] = result
            if k == 0:
                figures["runs"].append(result)
        stored, bare = runs["stored"], runs["bare"]
        cpu_us = {w: 1e6 * runs[w]["server_cpu_seconds"] / n_events for w in runs}
        pair = {
            "events_per_second_stored": stored["events_per_second"],
            "events_per_second_not_stored": bare["events_per_second"],
            "cost_percent": 100.0 * (1 - stored["events_per_second"] /
                                     bare["events_per_second"]),
            "cpu_us_per_event_stored": cpu_us["stored"],
            "cpu_us_per_event_not_stored": cpu_us["bare"],
            "bytes_per_event": (stored["closed_data_mb"] - bare["closed_data_mb"]) * 1e6 /
                               n_events,
        }
        pair_figures.append(pair)
        log("  pair %d: %.0f ev/s stored, %.0f not stored (cost %.1f%%); pantherd and "
            "workers %.1f / %.1f CPU-us per event; %.0f bytes per stored event" % (
                k + 1, pair["events_per_second_stored"], pair["events_per_second_not_stored"],
                pair["cost_percent"], pair["cpu_us_per_event_stored"],
                pair["cpu_us_per_event_not_stored"], pair["bytes_per_event"]))
    by_cost = sorted(pair_figures, key=lambda p: p["cost_percent"])
    median = by_cost[len(by_cost) // 2] if len(by_cost) % 2 else None
    costs = [p["cost_percent"] for p in by_cost]
    median_cost = (costs[len(costs) // 2] if len(costs) % 2 else
                   (costs[len(costs) // 2 - 1] + costs[len(costs) // 2]) / 2)
    summary = dict(median or by_cost[len(by_cost) // 2])
    summary.update({"events": n_events, "pairs": pair_figures, "cost_percent": median_cost,
                    "cost_percent_min": costs[0], "cost_percent_max": costs[-1]})
    figures["event_store"] = summary
    log("event store: cost %.1f%% of the no-rules rate (median of %d pair(s); %.1f%% to "
        "%.1f%%), %.0f bytes per stored event (closed data directories' difference)" % (
            median_cost, len(costs), costs[0], costs[-1], summary["bytes_per_event"]))


def generate_events(args, count, seed):
    """Generates `count` events with `seed` into the work directory (reused when
    already there); returns (path, the generator's summary)."""
    path = os.path.join(args.work, f"okta-{seed}-{count}.jsonl")
    summary_path = path + ".summary.json"
    if os.path.exists(path) and os.path.exists(summary_path):
        with open(summary_path) as f:
            return path, json.load(f)
    log(f"generating {count} events (seed {seed})")
    done = subprocess.run([PYTHON, os.path.join(HERE, "okta_gen.py"), "--events", str(count),
                           "--seed", str(seed), "--out", path], capture_output=True, check=False)
    if done.returncode != 0:
        raise SetupError("okta_gen.py failed: " + done.stderr.decode())
    summary = json.loads(done.stderr.decode().strip().splitlines()[-1])
    with open(summary_path, "w") as f:
        json.dump(summary, f)
    return path, summary


def head_file(path, count, work):
    """The first `count` events of `path` (the file itself when it has no more)."""
    out = os.path.join(work, f"head-{count}-{os.path.basename(path)}")
    n = 0
    with open(path, "rb") as f, open(out, "wb") as o:
        for line in f:
            if not line.strip():
                continue
            if n == count:
                break
            o.write(line)
            n += 1
    return out, n


def run(args, worker_counts, cores):
    figures = {"machine": {"cores": cores}, "runs": []}
    # 1. Events (not needed when only the memory runs run).
    events_path, n_events, size = None, 0, 0
    if args.no_main and args.latency_rate <= 0 and not args.store_cost_pairs:
        pass
    elif args.events_file:
        events_path = os.path.abspath(args.events_file)
        figures["events"] = {"file": events_path}
    else:
        events_path, figures["events"] = generate_events(args, args.events, args.seed)
    if events_path is not None:
        with open(events_path, "rb") as f:
            n_events = sum(1 for line in f if line.strip())
        size = os.path.getsize(events_path)

    failures = []
    reference = None
    if not args.no_main:
        # 2. Reference.
        log("running the Python reference")
        ref_out = os.path.join(args.work, "reference.json")
        done = subprocess.run([PYTHON, os.path.join(HERE, "reference.py"), "--rules",
                               args.rules, "--events", events_path, "--out", ref_out],
                              capture_output=True, check=False)
        if done.returncode != 0:
            raise SetupError("reference.py failed:\n" + done.stderr.decode())
        with open(ref_out) as f:
            reference = json.load(f)
        figures["reference"] = reference["stats"]
        figures["reference_alerts"] = len(reference["alerts"])

        # 3. pantherd with rules, for each worker count.
        shards = {}
        for workers in worker_counts:
            name = f"rules-w{workers}"
            log(f"running pantherd with {workers} worker(s)")
            if workers not in shards:
                shards[workers] = write_shards(events_path, workers, args.work)
            # The first run also replays the rules over the events it stored.
            result, alerts = run_pantherd(args, name, workers, shards[workers], args.rules,
                                          n_events, replay=workers == worker_counts[0])
            if result["replay"] is not None:
                rp = result["replay"]
                log("replay of the rules over the %d stored events: %.0f events/s against "
                    "%.0f live (%.2fx); %d alerts against %d live%s" % (
                        rp["events"], rp["events_per_second"], result["events_per_second"],
                        rp["events_per_second"] / result["events_per_second"], rp["alerts"],
                        rp["live_alerts"],
                        "" if not rp["rules_differing"] else
                        "; DIFFERENT for " + ", ".join(rp["rules_differing"])))
                if "impact" in rp:
                    im = rp["impact"]
                    log("live ingestion while replays run back to back: %.0f events/s against "
                        "%.0f alone (%.1f%% slower; %d replays, %d failed)" % (
                            im["live_events_per_second_during_replays"],
                            im["live_events_per_second_alone"], im["slowdown_percent"],
                            im["replays"], im["replays_failed"]))
                if rp["rules_differing"]:
                    failures.append((name + " replay", ["  alerts per rule differ: " +
                                                        ", ".join(rp["rules_differing"])]))
            same, diff = compare(reference["alerts"], alerts)
            with open(os.path.join(args.work, f"alerts-{name}.json"), "w") as f:
                json.dump(alerts, f, indent=1)
            with open(os.path.join(args.work, f"diff-{name}.txt"), "w") as f:
                f.write("".join(line + "\n" for line in diff))
            result["alerts"] = len(alerts)
            result["alerts_identical"] = same
            if not same:
                failures.append((name, diff))
            figures["runs"].append(result)

        # 4. Pieces: no rules at all, with and without the event store.
        if not args.no_pieces:
            measure_event_store(args, events_path, n_events, figures,
                                args.store_cost_pairs or 1)

        # 5. Latency probe: one event per batch, one batch at a time.
        if not args.no_latency_probe:
            log(f"latency probe: {args.probe_events} events, one per batch")
            probe_path, _ = generate_events(args, args.probe_events, args.seed + 1000)
            probe_args = argparse.Namespace(**vars(args))
            probe_args.batch_size = 1
            probe_args.window = 1
            result, _ = run_pantherd(probe_args, "probe-w1", 1, [probe_path], args.rules,
                                     args.probe_events)
            figures["latency_probe"] = {"events": args.probe_events,
                                        "event_latency_us": result["batch_latency_us"],
                                        "events_per_second": result["events_per_second"]}

    elif args.store_cost_pairs:
        measure_event_store(args, events_path, n_events, figures, args.store_cost_pairs)

    # 6. Alert latency: paced ingestion with a StreamAlerts subscriber.
    if args.latency_rate > 0:
        figures["alert_latency"] = run_latency(args, cores, events_path, n_events, reference,
                                               failures)

    # 7. Memory: a million live dedup windows against one.
    if args.windows > 0:
        figures["windows"] = run_windows(args, cores)

    report(figures, n_events, size)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    for name, diff in failures:
        print(f"\nALERTS DIFFER in {name} ({len(diff)} differences):")
        for line in diff[:50]:
            print(line)
        if len(diff) > 50:
            print(f"  ... and {len(diff) - 50} more")
    return 1 if failures else 0


def run_latency(args, cores, events_path, n_events, reference, failures):
    """Two paced runs with a subscriber: the rule folder, and a folder whose rule makes
    an alert of ~1.2% of events. One stream (its batches commit in order, which is how
    the sender ties each alert change to its batch), every worker."""
    workers = cores if args.latency_workers == "all" else int(args.latency_workers)
    count = n_events if args.latency_events is None else min(args.latency_events, n_events)
    path = events_path
    if count < n_events:
        path, count = head_file(events_path, count, args.work)
    lat_args = argparse.Namespace(**vars(args))
    lat_args.batch_size = args.latency_batch_size
    lat_args.window = args.latency_window
    flags = ["--rate", str(args.latency_rate), "--subscribe"]
    out = {"rate": args.latency_rate, "workers": workers, "batch_size": lat_args.batch_size,
           "window": lat_args.window, "events": count, "runs": []}
    folders = [("latency-rules", args.rules), ("latency-1pct", one_percent_folder(args.work))]
    for name, folder in folders:
        log(f"alert latency: {count} events at {args.latency_rate} events/s, batches of "
            f"{lat_args.batch_size}, {workers} worker(s), rules {os.path.basename(folder)}")
        compare_alerts = name == "latency-rules" and reference is not None and count == n_events
        result, alerts = run_pantherd(lat_args, name, workers, [path], folder, count, flags,
                                      read_back=compare_alerts)
        result["alerts"] = len(alerts) if compare_alerts else None
        result["alerts_identical"] = None
        if compare_alerts:
            same, diff = compare(reference["alerts"], alerts)
            result["alerts_identical"] = same
            if not same:
                failures.append((name, diff))
        out["runs"].append(result)
    return out


def run_windows(args, cores):
    """Ingests `--windows` events twice with a rule that matches every event and never
    alerts: once with a dedup string per event (one live window per event), once with
    one dedup string (one window). Peak RSS of pantherd and its workers, events/s."""
    workers = cores if args.windows_workers == "all" else int(args.windows_workers)
    path, _ = generate_events(args, args.windows, args.seed)
    win_args = argparse.Namespace(**vars(args))
    win_args.skip_tests = False
    out = {"events": args.windows, "workers": workers, "batch_size": args.batch_size,
           "window": args.window, "runs": []}
    for name, per_event in (("windows-1", False), (f"windows-{args.windows}", True)):
        kind = "one window per event" if per_event else "one window"
        log(f"memory: {args.windows} events, {kind}, {workers} worker(s)")
        result, _ = run_pantherd(win_args, name, workers, [path],
                                 windows_folder(args.work, per_event), args.windows,
                                 read_back=False)
        result["live_windows"] = args.windows if per_event else 1
        out["runs"].append(result)
    base, many = out["runs"]
    out["rss_increase_mb"] = many["peak_rss_mb"] - base["peak_rss_mb"]
    out["slowdown"] = 1.0 - many["events_per_second"] / base["events_per_second"]
    return out


def ms(us):
    return f"{us / 1000:.2f} ms"


def report(figures, n_events, size):
    if n_events:
        ev = figures["events"]
        print(f"events: {n_events} ({size / n_events:.0f} bytes each on average)"
              + (f", seed {ev['seed']}, {ev['first']} .. {ev['last']}" if "seed" in ev else ""))
    if "reference" in figures:
        report_main(figures)
    if "alert_latency" in figures:
        report_latency(figures["alert_latency"])
    if "windows" in figures:
        report_windows(figures["windows"])


def report_main(figures):
    ref = figures["reference"]
    print(f"reference (Python, 1 core): {ref['events_per_second']:.0f} events/s, "
          f"{ref['events_per_cpu_second']:.0f} events/CPU-s "
          f"(with normalisation: {ref['events_per_second_with_normalize']:.0f} events/s); "
          f"per event p50 {ref['latency_p50_us']:.0f} us, p99 {ref['latency_p99_us']:.0f} us; "
          f"peak RSS {ref['peak_rss_mb']:.0f} MB")
    print(f"  {ref['rules']} rules, {ref['matches']} matches, {figures['reference_alerts']} "
          f"alerts; detection-cache calls: {ref['cache_reads']} reads, "
          f"{ref['cache_writes']} writes")
    header = (f"{'run':<12} {'workers':>7} {'streams':>7} {'events/s':>9} {'x ref':>6} "
              f"{'ev/cpu-s':>9} {'x ref':>6} {'batch p50':>10} {'batch p99':>10} "
              f"{'RSS MB':>7} {'alerts':>7}  same")
    print(header)
    for r in figures["runs"]:
        ratio = r["events_per_second"] / ref["events_per_second"]
        cpu = r["events_per_server_cpu_second"] or 0.0
        cpu_ratio = cpu / ref["events_per_cpu_second"] if ref["events_per_cpu_second"] else 0.0
        same = {True: "yes", False: "NO", None: "-"}[r["alerts_identical"]]
        print(f"{r['name']:<12} {r['workers']:>7} {r['streams']:>7} "
              f"{r['events_per_second']:>9.0f} {ratio:>6.2f} {cpu:>9.0f} {cpu_ratio:>6.2f} "
              f"{r['batch_latency_us']['p50'] / 1000:>8.1f}ms "
              f"{r['batch_latency_us']['p99'] / 1000:>8.1f}ms {r['peak_rss_mb']:>7.0f} "
              f"{r['alerts']:>7}  {same}")
    if "latency_probe" in figures:
        p = figures["latency_probe"]
        lat = p["event_latency_us"]
        print(f"latency probe (1 worker, one event per batch, one batch in flight): "
              f"event accepted-to-durable p50 {lat['p50'] / 1000:.2f} ms, "
              f"p99 {lat['p99'] / 1000:.2f} ms, max {lat['max'] / 1000:.2f} ms")
    report_own_figures(figures)


def report_own_figures(figures):
    """pantherd's own figures (its /metrics) of each run: events and where rule time went."""
    runs = [r for r in figures["runs"] if r.get("metrics")]
    if not runs:
        return
    print("pantherd's own figures (GET /metrics after each run):")
    for r in runs:
        m = r["metrics"]
        rejected = sum(m["events_rejected"].values())
        print(f"  {r['name']}: {m['batches']} batches, {m['events_accepted']} accepted, "
              f"{m['events_duplicate']} duplicate, {rejected} rejected; "
              f"{m['rule_evaluations']} rule() calls, {m['rule_seconds']:.2f} s in rules, "
              f"{m['worker_restarts']} worker restarts")
        for t in m["top_rules"]:
            print(f"    {t.get('seconds', 0.0):8.3f} s  {t.get('evaluations', 0):>9} calls  "
                  f"{t.get('matches', 0):>7} matches  {t.get('errors', 0):>5} errors  {t['rule']}")


def report_latency(lat):
    interval_ms = lat["batch_size"] * 1000.0 / lat["rate"]
    print(f"alert latency: {lat['events']} events offered at {lat['rate']:.0f} events/s "
          f"(one stream, batches of {lat['batch_size']} every {interval_ms:.1f} ms, at most "
          f"{lat['window']} in flight), {lat['workers']} worker(s), a StreamAlerts subscriber "
          f"in the sending process")
    for r in lat["runs"]:
        sent = r["sender"]
        a = sent["alerts"]
        same = {True: ", alerts identical to the reference", False: ", ALERTS DIFFER",
                None: ""}[r["alerts_identical"]]
        print(f"  {r['name']}: sent {sent['send_events_per_second']:.0f} events/s, ingested "
              f"{sent['events_per_second']:.0f} events/s, {sent['late_batches']} of "
              f"{sent['batches']} batches sent late (max {ms(sent['max_send_lag_us'])}); "
              f"batch ack p50 {ms(sent['batch_latency_us']['p50'])}, "
              f"p99 {ms(sent['batch_latency_us']['p99'])}; peak RSS {r['peak_rss_mb']:.0f} MB"
              f"{same}")
        print(f"    alert changes: {a['received']} received of {a['expected']} announced "
              f"({a['created']} created, {a['updated']} updated; {a['verified']} tied to "
              f"their batch by their triggering event too)")
        for key, what in (("from_ack_us", "batch acknowledged -> change received"),
                          ("from_send_us", "batch written -> change received"),
                          ("from_record_us", "change recorded (server clock) -> received")):
            d = a[key]
            print(f"    {what:<42} p50 {ms(d['p50']):>10}  p99 {ms(d['p99']):>10}  "
                  f"max {ms(d['max']):>10}  (min {ms(d['min'])})")


def report_windows(w):
    print(f"memory: {w['events']} events, a rule matching every event, threshold "
          f"{WINDOWS_THRESHOLD}, period {WINDOWS_PERIOD_MINUTES} min, {w['workers']} worker(s), "
          f"batches of {w['batch_size']}")
    for r in w["runs"]:
        print(f"  {r['live_windows']:>9} live window(s): {r['events_per_second']:.0f} events/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (at the end {r['end_rss_mb']:.0f} MB), "
              f"data directory {r['data_mb']:.0f} MB, batch ack p50 "
              f"{ms(r['batch_latency_us']['p50'])}, p99 {ms(r['batch_latency_us']['p99'])}")
    print(f"  peak RSS difference {w['rss_increase_mb']:+.0f} MB; ingestion "
          f"{w['slowdown'] * 100:.1f}% slower with the windows")


if __name__ == "__main__":
    sys.exit(main())
