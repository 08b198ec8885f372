#!/usr/bin/python3
"""SQL search against a model: pantherctl search versus Python's sqlite3 over the same events.

It starts a fresh pantherd (127.0.0.1 port 0, a temporary data directory, no auth), sends
examples/okta-events.jsonl with `pantherctl send`, then runs each query of QUERIES with
`pantherctl --output json search` and compares the rows with what Python's sqlite3 returns
for the same query over a table okta_systemlog built from the same file the way pantherd
stores events (docs/events.md): the top-level fields with their JSON types, objects and
arrays as compact JSON text (without null members, which normalisation drops), `published` and p_event_time in the stored time format. It also checks
the row limit and that the sandbox refuses writes.

  search_model_test.py --pantherd BIN --pantherctl BIN --source-dir DIR
"""

import argparse
import datetime
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

OKTA_FIELDS = ["uuid", "published", "eventType", "version", "severity", "legacyEventType",
               "displayMessage", "actor", "client", "device", "authenticationContext",
               "securityContext", "debugContext", "outcome", "target", "transaction", "request"]

# (query, window): window is None for the whole file, or (first, last) indexes of events
# (in time order) whose published times bound a p_event_time range, substituted for
# {FROM} and {TO} (stored format) and {FROM_RFC} and {TO_RFC} (RFC 3339).
QUERIES = [
    ("SELECT count(*) FROM okta_systemlog", None),
    ("SELECT eventType, count(*) AS n FROM okta_systemlog GROUP BY eventType ORDER BY eventType",
     None),
    ("SELECT json_extract(actor, '$.alternateId') AS who, count(*) FROM okta_systemlog "
     "WHERE json_extract(outcome, '$.result') = 'FAILURE' GROUP BY who ORDER BY who", None),
    ("SELECT severity, displayMessage, count(*) FROM okta_systemlog GROUP BY 1, 2 ORDER BY 1, 2",
     None),
    ("SELECT t.value ->> '$.type' AS kind, count(*) FROM okta_systemlog, "
     "json_each(okta_systemlog.target) AS t GROUP BY kind ORDER BY kind", None),
    ("SELECT client ->> '$.ipAddress' AS ip, count(DISTINCT uuid) AS n FROM okta_systemlog "
     "GROUP BY ip ORDER BY n DESC, ip LIMIT 5", None),
    ("SELECT uuid, legacyEventType IS NULL, typeof(device), typeof(actor) FROM okta_systemlog "
     "ORDER BY uuid LIMIT 40", None),
    ("SELECT uuid, published, p_event_time FROM okta_systemlog "
     "WHERE p_event_time >= '{FROM}' AND p_event_time < '{TO}' ORDER BY uuid", (40, 90)),
    ("SELECT uuid FROM okta_systemlog WHERE p_occurs_between('{FROM_RFC}', '{TO_RFC}') "
     "ORDER BY p_event_time, uuid", (100, 160)),
    ("SELECT eventType, min(p_event_time), max(p_event_time) FROM okta_systemlog "
     "WHERE p_event_time BETWEEN '{FROM}' AND '{TO}' GROUP BY 1 ORDER BY 1", (10, 300)),
    ("SELECT json_extract(securityContext, '$.domain') AS d, "
     "json_extract(debugContext, '$.debugData.requestUri') AS uri, count(*) "
     "FROM okta_systemlog GROUP BY d, uri ORDER BY d, uri", None),
    ("SELECT uuid, actor, client, target, request, debugContext FROM okta_systemlog "
     "ORDER BY uuid", None),
    ("WITH f AS (SELECT actor ->> '$.alternateId' AS who, uuid FROM okta_systemlog "
     "WHERE eventType LIKE 'user.session.%') SELECT who, count(*) FROM f GROUP BY who "
     "HAVING count(*) > 1 ORDER BY who", None),
]

HOSTILE = [
    "DROP TABLE okta_systemlog",
    "ATTACH DATABASE 'evil.db' AS evil",
    "SELECT load_extension('evil')",
    "PRAGMA table_info(okta_systemlog)",
    "SELECT 1; SELECT 2",
    "INSERT INTO okta_systemlog (uuid) VALUES ('x')",
]


def stored_time(text):
    """An Okta `published` time in the stored format: 'YYYY-MM-DD HH:MM:SS.fffffffff' UTC."""
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return t.strftime("%Y-%m-%d %H:%M:%S.") + "%06d000" % t.microsecond


def rfc3339(stored):
    return stored[:10] + "T" + stored[11:26] + "Z"


def from_rfc3339(text):
    """rfc3339()'s inverse: '2026-11-24T03:54:35.332000Z' -> '2026-11-24 03:54:35.332000000'."""
    return text[:10] + " " + text[11:-1] + "000"


def without_nulls(value):
    """As pantherd normalises events: object members whose value is null are dropped."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def column_value(value):
    if isinstance(value, (dict, list)):
        return json.dumps(without_nulls(value), separators=(",", ":"), ensure_ascii=False)
    if isinstance(value, bool):
        return 1 if value else 0
    return value


def build_model(events):
    db = sqlite3.connect(":memory:")
    columns = OKTA_FIELDS + ["p_log_type", "p_event_time"]
    db.execute("CREATE TABLE okta_systemlog (%s)" % ", ".join('"%s"' % c for c in columns))
    for event in events:
        row = [column_value(event.get(c)) for c in OKTA_FIELDS]
        row[OKTA_FIELDS.index("published")] = stored_time(event["published"])
        row += ["Okta.SystemLog", stored_time(event["published"])]
        db.execute("INSERT INTO okta_systemlog VALUES (%s)" % ", ".join("?" * len(columns)), row)
    return db


def start_server(pantherd, scratch):
    log_path = os.path.join(scratch, "pantherd.log")
    log = open(log_path, "w", encoding="utf-8")
    args = [pantherd, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(scratch, "data"),
            "--auth", "none", "--workers", "1", "--event-retention", "36500d",
            "--shutdown-grace-seconds", "2"]
    server = subprocess.Popen(args, cwd=scratch, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as current:
            match = re.search(r"msg=serving listen=(127\.0\.0\.1:\d+)", current.read())
        if match:
            return server, match.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    stop(server)
    raise RuntimeError("pantherd did not start:\n" + open(log_path, encoding="utf-8").read())


def stop(process):
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pantherd", required=True)
    parser.add_argument("--pantherctl", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    args.pantherd = os.path.abspath(args.pantherd)
    args.pantherctl = os.path.abspath(args.pantherctl)

    events_path = os.path.join(args.source_dir, "examples", "okta-events.jsonl")
    with open(events_path, encoding="utf-8") as f:
        events = [json.loads(line) for line in f if line.strip()]
    ordered = sorted(stored_time(e["published"]) for e in events)
    since = rfc3339(ordered[0])[:19] + "Z"
    last = datetime.datetime.strptime(ordered[-1][:19], "%Y-%m-%d %H:%M:%S")
    until = (last + datetime.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    model = build_model(events)
    failures = []

    with tempfile.TemporaryDirectory() as scratch:
        server, address = start_server(args.pantherd, scratch)
        try:
            ctl = [args.pantherctl, "--server", address]
            sent = subprocess.run(ctl + ["send", events_path, "--quiet"], capture_output=True,
                                  text=True, timeout=120)
            if sent.returncode != 0:
                raise RuntimeError("pantherctl send failed:\n" + sent.stdout + sent.stderr)

            def search(sql, limit=100000, extra=()):
                return subprocess.run(ctl + ["--output", "json", "search", sql, "--since", since,
                                             "--until", until, "--limit", str(limit)]
                                      + list(extra), capture_output=True, text=True, timeout=120)

            for query, window in QUERIES:
                if window is not None:
                    lo, hi = ordered[window[0]], ordered[window[1]]
                    query = query.format(FROM=lo, TO=hi, FROM_RFC=rfc3339(lo),
                                         TO_RFC=rfc3339(hi))
                model_sql = re.sub(r"p_occurs_between\('([^']*)', '([^']*)'\)",
                                   lambda m: "(p_event_time >= '%s' AND p_event_time < '%s')" % (
                                       from_rfc3339(m.group(1)), from_rfc3339(m.group(2))),
                                   query)
                expected = [list(r) for r in model.execute(model_sql).fetchall()]
                got = search(query)
                if got.returncode != 0:
                    failures.append("%s\n  pantherctl failed: %s" % (query, got.stderr.strip()))
                    continue
                result = json.loads(got.stdout)
                if result["rows"] != expected:
                    failures.append("%s\n  pantherd: %s\n  model:    %s" % (
                        query, result["rows"][:10], expected[:10]))
                else:
                    print("ok  %s (%d rows, %d events read)" % (
                        query[:70], len(expected), result["summary"]["eventsScanned"]))

            # The row limit.
            got = search("SELECT uuid FROM okta_systemlog ORDER BY uuid", limit=7)
            result = json.loads(got.stdout) if got.returncode == 0 else {}
            if (result.get("summary", {}).get("truncated") is not True
                    or len(result.get("rows", [])) != 7):
                failures.append("--limit 7 did not truncate: %s %s" % (got.stdout, got.stderr))
            # The sandbox.
            for sql in HOSTILE:
                got = search(sql)
                if got.returncode == 0 or "not allowed" not in got.stderr and (
                        "exactly one statement" not in got.stderr):
                    failures.append("not refused: %s\n  %s" % (sql, got.stdout))
                else:
                    print("refused  %s: %s" % (sql, got.stderr.strip()))
            # The server's checks: a missing statement, the query timeout.
            got = search("")
            if got.returncode == 0 or "sql" not in got.stderr or "required" not in got.stderr:
                failures.append("an empty sql was not refused: %s %s" % (got.stdout, got.stderr))
            started = time.monotonic()
            got = search("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                         "SELECT count(*) FROM c", extra=["--query-timeout", "1"])
            took = time.monotonic() - started
            if got.returncode == 0 or "timeout of 1 s" not in got.stderr or took > 20:
                failures.append("an endless query was not stopped at its timeout (%.1f s): %s %s"
                                % (took, got.stdout, got.stderr))
            else:
                print("stopped after %.1f s: %s" % (took, got.stderr.strip()))
            got = search("SELECT count(*) FROM okta_systemlog")
            if got.returncode != 0 or json.loads(got.stdout)["rows"] != [[len(events)]]:
                failures.append("the table changed after the hostile statements: " + got.stdout)
        finally:
            stop(server)

    if failures:
        print("FAILED:\n" + "\n".join(failures))
        return 1
    print("all %d queries match the model" % len(QUERIES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
