#!/usr/bin/python3
"""Runs the README's walkthrough commands against a fresh pantherd and checks what they print.

The commands come from README.md itself: every fenced ```sh block preceded by the comment
`<!-- readme-test: run -->` is run line by line, in README order, each line with
`bash -c`, and must exit 0; the block preceded by `<!-- readme-test: follow -->` (the
`alerts tail` a user leaves running in another terminal) is started in the background and
stopped by this test once it has printed what it should. A line `export NAME=...` changes
the environment of the lines after it, as it would in the user's terminal; that is how the
README's PATH line puts build/client and build/server on PATH here too. Blocks without a
marker (starting the server with .ci/start, placeholder paths) are not run.

What this test changes, and why:

* It starts pantherd itself, as .ci/start does (`pantherd --rules-dir rules`, from the build
  the README's PATH line names) but on 127.0.0.1 port 0, with a temporary data directory
  (`.pantherd` in a scratch directory), two rule workers and a short shutdown grace, and
  gives the commands the server's real address in PANTHER_SERVER, since the README's
  127.0.0.1:50051 may be in use.
* The commands run in that scratch directory, which stands in for the checkout: `rules`,
  `examples` and `build` in it are symbolic links to the source tree's folders and the
  build tree, and `.pantherd` is the server's data directory, so every path in the README
  is used as written. HOME and XDG_CONFIG_HOME point into the scratch directory, so `login`
  writes no file outside it.
* `ALERT_ID` in `alerts update ALERT_ID` is replaced with the id of the alert the sample
  produced, and `TOKEN_ID` in `tokens revoke TOKEN_ID` with the id of the token the README
  created just before, as the README tells the reader to do.

Everything listens on or connects to 127.0.0.1 only, and the test stops by itself: each
command has a time limit, and pantherd and the tail are stopped at the end.

Usage: readme_walkthrough_test.py --source-dir DIR --build-dir DIR
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

COMMAND_SECONDS = 60
EXPECTED_TITLE = "Multiple Failed Logins for admin"
SAMPLE = "examples/okta-events.jsonl"

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
        print(f"FAIL: {message}", flush=True)
    return condition


def readme_blocks(readme_text):
    """[(marker, [lines])] for each fenced sh block preceded by a readme-test marker."""
    blocks = []
    pattern = re.compile(
        r"<!--\s*readme-test:\s*(\w+)\s*-->\s*\n```sh\n(.*?)```", re.DOTALL)
    for match in pattern.finditer(readme_text):
        lines = [line for line in match.group(2).splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
        blocks.append((match.group(1), lines))
    return blocks


def run_line(line, cwd, env):
    """Runs one README line with bash; returns (exit code, stdout, stderr, env after it)."""
    script = line
    export = line.startswith("export ")
    if export:
        script = f"{line}\nenv -0"
    proc = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=COMMAND_SECONDS, check=False)
    new_env = env
    if export and proc.returncode == 0:
        new_env = dict(item.split("=", 1) for item in proc.stdout.split("\0") if "=" in item)
        proc.stdout = ""
    return proc.returncode, proc.stdout, proc.stderr, new_env


def find_dicts(value, key):
    """Every dict anywhere inside `value` that has `key`."""
    found = []
    if isinstance(value, dict):
        if key in value:
            found.append(value)
        for item in value.values():
            found.extend(find_dicts(item, key))
    elif isinstance(value, list):
        for item in value:
            found.extend(find_dicts(item, key))
    return found


def field(alert, *names):
    for name in names:
        if name in alert:
            return alert[name]
    return None


def start_server(pantherd, scratch, log_path):
    args = [pantherd, "--listen", "127.0.0.1:0", "--data-dir", os.path.join(scratch, ".pantherd"),
            "--rules-dir", "rules", "--workers", "2", "--shutdown-grace-seconds", "2"]
    log = open(log_path, "w", encoding="utf-8")
    server = subprocess.Popen(args, cwd=scratch, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as current:
            text = current.read()
        match = re.search(r"msg=serving listen=(127\.0\.0\.1:\d+)", text)
        if match:
            return server, match.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    server.kill()
    raise RuntimeError("pantherd did not start:\n" + open(log_path, encoding="utf-8").read())


def stop(process, sig=signal.SIGTERM, seconds=15):
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--source-dir", required=True)
    parser.add_argument("--build-dir", required=True)
    parser.add_argument("--pantherd", required=True, help="the pantherd the build made")
    parser.add_argument("--pantherctl", required=True, help="the pantherctl the build made")
    args = parser.parse_args()
    source = os.path.abspath(args.source_dir)
    build = os.path.abspath(args.build_dir)

    with open(os.path.join(source, "README.md"), encoding="utf-8") as readme:
        blocks = readme_blocks(readme.read())
    run_lines = [line for marker, lines in blocks if marker == "run" for line in lines]
    follow_lines = [line for marker, lines in blocks if marker == "follow" for line in lines]
    check(len(follow_lines) == 1, f"one follow line expected in README.md, found {follow_lines}")
    for needed in ("export PATH=", "pantherctl login", f"pantherctl send {SAMPLE}",
                   "pantherctl alerts list", "pantherctl alerts update ALERT_ID",
                   "pantherctl rules disable Okta.FailedLogin"):
        check(any(line.startswith(needed) for line in run_lines),
              f"no README walkthrough line starts with {needed!r}")
    for line in run_lines + follow_lines:
        check(re.match(r"(export |pantherctl )", line) is not None,
              f"README walkthrough line neither sets the environment nor runs pantherctl: {line}")
    if failures:
        return 1
    with open(os.path.join(source, SAMPLE), encoding="utf-8") as sample:
        sample_events = sum(1 for line in sample if line.strip())

    scratch = tempfile.mkdtemp(prefix="pantherd-readme-")
    server = tail = None
    try:
        for name, target in (("rules", os.path.join(source, "rules")),
                             ("examples", os.path.join(source, "examples")),
                             ("build", build)):
            os.symlink(target, os.path.join(scratch, name))
        os.mkdir(os.path.join(scratch, "home"), 0o700)
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": os.path.join(scratch, "home"),
            "XDG_CONFIG_HOME": os.path.join(scratch, "home", ".config"),
            "LANG": "C.UTF-8",
        }
        # The pantherd the README's PATH line makes `pantherd` mean.
        pantherd = os.path.join(scratch, "build", "server", "pantherd")
        server, address = start_server(pantherd, scratch, os.path.join(scratch, "pantherd.log"))
        env["PANTHER_SERVER"] = address
        print(f"pantherd serving on {address}", flush=True)

        outputs = {}
        alert_id = None
        for line in run_lines:
            if line.startswith("pantherctl send") and tail is None:
                # The user starts `alerts tail` in one terminal before sending in another.
                tail_out = os.path.join(scratch, "tail.out")
                tail_err = os.path.join(scratch, "tail.err")
                with open(tail_out, "w") as out, open(tail_err, "w") as err:
                    tail = subprocess.Popen(["bash", "-c", f"exec {follow_lines[0]}"],
                                            cwd=scratch, env=env, stdout=out, stderr=err,
                                            start_new_session=True)
                check(wait_for(lambda: subscribers(env, scratch) >= 1, 20),
                      "alerts tail did not subscribe to the alert feed within 20 s")
            if "ALERT_ID" in line:
                check(alert_id is not None, "no alert id to put in place of ALERT_ID")
                line = line.replace("ALERT_ID", alert_id or "ALERT_ID")
            if "TOKEN_ID" in line:
                token_id = token_field(env, scratch, "alice-laptop", "id")
                check(token_id is not None, "no token alice-laptop to put in place of TOKEN_ID")
                line = line.replace("TOKEN_ID", str(token_id))
            print(f"$ {line}", flush=True)
            code, out, err, env = run_line(line, scratch, env)
            sys.stdout.write(out)
            sys.stdout.write(err)
            check(code == 0, f"`{line}` exited {code}: {err.strip()}")
            outputs[line] = out
            if line.startswith("export PATH="):
                # The README's PATH line must make the names mean this build's binaries.
                for name, built in (("pantherctl", args.pantherctl), ("pantherd", args.pantherd)):
                    _, where, _, _ = run_line(f"command -v {name}", scratch, env)
                    check(where.strip() and os.path.realpath(where.strip())
                          == os.path.realpath(built),
                          f"after the README's PATH line, {name} is {where.strip()!r}, "
                          f"not {built}")
            if line.startswith("pantherctl alerts list"):
                alert_id = check_alerts(env, scratch)

        by_start = lambda prefix: "\n".join(out for line, out in outputs.items()
                                            if line.startswith(prefix))
        check("admin" in by_start("pantherctl whoami"), "whoami does not name admin")
        check("Okta.FailedLogin" in by_start("pantherctl rules list"),
              "rules list does not list Okta.FailedLogin")
        check(str(sample_events) in by_start(f"pantherctl send {SAMPLE}"),
              f"send does not report the sample's {sample_events} events")
        listed = by_start("pantherctl alerts list")
        check(EXPECTED_TITLE in listed and "CRITICAL" in listed,
              f"alerts list does not show the CRITICAL alert {EXPECTED_TITLE!r}")
        check("Disabled Okta.FailedLogin" in by_start("pantherctl rules disable"),
              "rules disable did not report disabling Okta.FailedLogin")
        check("Okta.FailedLogin" in by_start("pantherctl rules list --disabled"),
              "rules list --disabled does not list Okta.FailedLogin")
        check("Enabled Okta.FailedLogin" in by_start("pantherctl rules enable"),
              "rules enable did not report enabling Okta.FailedLogin")
        check("alice-laptop" in by_start("pantherctl tokens list --all"),
              "tokens list --all does not list the token alice-laptop")
        check(token_field(env, scratch, "alice-laptop", "revoked") is True,
              "the token alice-laptop is not revoked after tokens revoke")
        code, out, err, _ = run_line("pantherctl --output json users list --all", scratch, env)
        alice = [user for user in find_dicts(json.loads(out or "{}"), "name")
                 if user["name"] == "alice"]
        check(len(alice) == 1 and field(alice[0], "disabled") is True,
              f"alice is not a disabled user after users disable: {alice}")

        # After the walkthrough: the alert is triaged and assigned, its context has no
        # data-lake query, and sending the sample again changes nothing.
        if alert_id:
            code, out, err, _ = run_line(f"pantherctl --output json alerts get {alert_id}",
                                         scratch, env)
            check(code == 0, f"alerts get exited {code}: {err}")
            check("TRIAGED" in out.upper() and "alice" in out,
                  "the alert is not triaged and assigned to alice after alerts update")
            check("PantherFlow" not in out, "the alert's context still has a PantherFlow query")
        code, out, err, _ = run_line(f"pantherctl send {SAMPLE}", scratch, env)
        check(code == 0, f"sending the sample again exited {code}: {err}")
        check(check_alerts(env, scratch) == alert_id, "sending the sample again changed the alerts")

        if tail is not None:
            check(wait_for(lambda: EXPECTED_TITLE in open(tail_out).read(), 20),
                  f"alerts tail --severity HIGH did not print {EXPECTED_TITLE!r}")
            stop(tail)
            sys.stdout.write("alerts tail printed:\n" + open(tail_out).read())
    finally:
        if tail is not None:
            stop(tail)
        if server is not None:
            stop(server, seconds=20)
            log = open(os.path.join(scratch, "pantherd.log"), encoding="utf-8").read()
            if failures:
                sys.stdout.write("pantherd log:\n" + log)
        shutil.rmtree(scratch, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed", flush=True)
        return 1
    print("README walkthrough: all commands ran and printed what the README says", flush=True)
    return 0


def subscribers(env, scratch):
    """Alert-feed subscribers pantherd reports in `pantherctl --output json status`."""
    code, out, _, _ = run_line("pantherctl --output json status", scratch, env)
    if code != 0:
        return 0
    try:
        status = json.loads(out)
    except ValueError:
        return 0
    counts = [value for holder in find_dicts(status, "subscribers")
              for value in [holder["subscribers"]] if isinstance(value, (int, str))]
    return max([int(value) for value in counts] or [0])


def token_field(env, scratch, name, key):
    """A field of the API token called `name`, from `pantherctl --output json tokens list`."""
    code, out, _, _ = run_line("pantherctl --output json tokens list --all --include-revoked",
                               scratch, env)
    if code != 0:
        return None
    tokens = [token for token in find_dicts(json.loads(out), "name") if token["name"] == name]
    return tokens[0].get(key) if len(tokens) == 1 else None


def check_alerts(env, scratch):
    """Checks that the sample produced exactly the one alert the README names; its id."""
    code, out, err, _ = run_line("pantherctl --output json alerts list", scratch, env)
    if not check(code == 0, f"alerts list --output json exited {code}: {err}"):
        return None
    alerts = find_dicts(json.loads(out), "title")
    if not check(len(alerts) == 1, f"expected exactly one alert, got {len(alerts)}: {out}"):
        return None
    alert = alerts[0]
    check(alert.get("title") == EXPECTED_TITLE, f"alert title is {alert.get('title')!r}")
    check(field(alert, "ruleId", "rule_id") == "Okta.FailedLogin",
          f"alert rule is {field(alert, 'ruleId', 'rule_id')!r}")
    check("CRITICAL" in str(alert.get("severity")), f"alert severity is {alert.get('severity')!r}")
    check(str(field(alert, "eventCount", "event_count")) == "5",
          f"alert event count is {field(alert, 'eventCount', 'event_count')!r}, not 5")
    return str(alert.get("id"))


if __name__ == "__main__":
    sys.exit(main())
