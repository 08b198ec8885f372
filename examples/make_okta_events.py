#!/usr/bin/python3
"""Writes examples/okta-events.jsonl: one working day of a small company's Okta System Log.

The output is deterministic (a fixed seed, a fixed day, no clock), so running this script
again reproduces the checked-in file byte for byte:

    python3 examples/make_okta_events.py            # rewrites examples/okta-events.jsonl
    python3 examples/make_okta_events.py --check    # exit 1 if the file differs

Events have the shape GET /api/v1/logs returns (camelCase, JSON nulls where Okta sends
them, the string "null" for client.zone, string-valued debugData, millisecond `published`
with `Z`, a unique `uuid`). The day holds:

* routine sign-ins of twenty employees in six countries, each a user.session.start
  (SUCCESS), a policy.evaluate_sign_on (ALLOW or CHALLENGE), an MFA step
  (user.authentication.auth_via_mfa) and single sign-on to apps
  (user.authentication.sso), sharing one transaction id; some users sign out
  (user.session.end) and a few mistype their password once first;
* one attack: five failed sign-ins (user.session.start, FAILURE) for the login `admin`
  from one hosting-provider IP within four minutes.

Against the bundled rules (rules/) the day produces exactly one alert:
Okta.FailedLogin, "Multiple Failed Logins for admin", CRITICAL (five failures from one IP
within the rule's 60-minute window). The routine traffic is shaped so that nothing else
fires: every user signs in from one country and keeps each session on one network, and no
IP sees five failures or five failing accounts in an hour. The script checks these
properties before it writes anything.

All addresses are from the documentation ranges (RFC 5737) and all names are invented.
"""

import argparse
import collections
import datetime
import hashlib
import json
import os
import random
import sys
import uuid

DAY = datetime.datetime(2026, 11, 24, tzinfo=datetime.timezone.utc)
SEED = 20261124
DOMAIN = "northwind-labs.example"
ORG = "northwind-labs"
UUID_NAMESPACE = uuid.UUID("6a1d7a52-4b8e-4f0e-9d0c-5f3f2b9c1e11")

# One entry per place people work from: city, state, country, postal code, lat, lon, the
# NAT address, its ISP and autonomous system.
PLACES = {
    "sfo": ("San Francisco", "California", "United States", "94107", 37.7697, -122.3933,
            "198.51.100.24", "comcast cable communications llc", "comcast.net", 7922),
    "aus": ("Austin", "Texas", "United States", "78701", 30.2672, -97.7431,
            "198.51.100.77", "at&t services inc", "att.net", 7018),
    "tor": ("Toronto", "Ontario", "Canada", "M5V", 43.6426, -79.3871,
            "198.51.100.130", "rogers communications canada inc.", "rogers.com", 812),
    "lon": ("London", "England", "United Kingdom", "EC2A", 51.5246, -0.0786,
            "203.0.113.18", "british telecommunications plc", "bt.com", 2856),
    "ber": ("Berlin", "Land Berlin", "Germany", "10115", 52.5321, 13.3849,
            "203.0.113.52", "deutsche telekom ag", "telekom.de", 3320),
    "blr": ("Bengaluru", "Karnataka", "India", "560001", 12.9716, 77.5946,
            "192.0.2.61", "bharti airtel ltd.", "airtel.in", 24560),
    "sao": ("Sao Paulo", "Sao Paulo", "Brazil", "01310", -23.5614, -46.6559,
            "192.0.2.88", "telefonica brasil s.a", "vivo.com.br", 26599),
}

BROWSERS = {
    "mac_chrome": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                   "(KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36", "Mac OS X", "CHROME"),
    "mac_safari": ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                   "(KHTML, like Gecko) Version/18.1 Safari/605.1.15", "Mac OS X", "SAFARI"),
    "win_edge": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Windows 10", "EDGE"),
    "win_firefox": ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 "
                    "Firefox/132.0", "Windows 10", "FIREFOX"),
    "linux_firefox": ("Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 "
                      "Firefox/132.0", "Linux", "FIREFOX"),
    "iphone": ("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1", "iOS",
               "MOBILE_SAFARI"),
}

# login, display name, place, browser, MFA factor, local hour the day starts.
USERS = [
    ("maria.okafor", "Maria Okafor", "sfo", "mac_chrome", "OKTA_VERIFY_PUSH", 8),
    ("dev.patel", "Dev Patel", "sfo", "mac_chrome", "FIDO_WEBAUTHN", 9),
    ("lena.fischer", "Lena Fischer", "ber", "linux_firefox", "FIDO_WEBAUTHN", 8),
    ("tom.becker", "Tom Becker", "ber", "win_edge", "OKTA_VERIFY_PUSH", 9),
    ("priya.raman", "Priya Raman", "blr", "mac_safari", "OKTA_VERIFY_PUSH", 9),
    ("arjun.mehta", "Arjun Mehta", "blr", "win_firefox", "TOTP", 10),
    ("sofia.almeida", "Sofia Almeida", "sao", "mac_chrome", "OKTA_VERIFY_PUSH", 8),
    ("james.whitfield", "James Whitfield", "lon", "win_edge", "OKTA_VERIFY_PUSH", 8),
    ("chloe.martin", "Chloe Martin", "tor", "mac_safari", "FIDO_WEBAUTHN", 9),
    ("noah.tremblay", "Noah Tremblay", "tor", "iphone", "OKTA_VERIFY_PUSH", 10),
    ("grace.kim", "Grace Kim", "aus", "mac_chrome", "TOTP", 8),
    ("omar.haddad", "Omar Haddad", "aus", "win_firefox", "OKTA_VERIFY_PUSH", 9),
    ("hannah.schulz", "Hannah Schulz", "ber", "mac_chrome", "OKTA_VERIFY_PUSH", 8),
    ("rafael.costa", "Rafael Costa", "sao", "win_edge", "TOTP", 9),
    ("emily.clarke", "Emily Clarke", "lon", "mac_safari", "FIDO_WEBAUTHN", 9),
    ("kenji.watanabe", "Kenji Watanabe", "sfo", "linux_firefox", "FIDO_WEBAUTHN", 10),
    ("ananya.iyer", "Ananya Iyer", "blr", "mac_chrome", "OKTA_VERIFY_PUSH", 10),
    ("lucas.moreau", "Lucas Moreau", "tor", "win_edge", "OKTA_VERIFY_PUSH", 8),
    ("olivia.brooks", "Olivia Brooks", "aus", "iphone", "OKTA_VERIFY_PUSH", 8),
    ("daniel.novak", "Daniel Novak", "lon", "win_firefox", "TOTP", 8),
]

# UTC offset in hours of each place on the day (late November).
UTC_OFFSET = {"sfo": -8, "aus": -6, "tor": -5, "lon": 0, "ber": 1, "blr": 5.5, "sao": -3}

APPS = [
    ("0oa1slack0000d697", "Slack", "slack"),
    ("0oa1gsuite000d697", "Google Workspace", "google"),
    ("0oa1github000d697", "GitHub Enterprise Cloud", "githubcloud"),
    ("0oa1sfdc00000d697", "Salesforce.com", "salesforce"),
    ("0oa1zoom00000d697", "Zoom", "zoomus"),
    ("0oa1aws000000d697", "AWS IAM Identity Center", "aws_sso"),
    ("0oa1jira00000d697", "Atlassian Cloud", "atlassian"),
]

SIGN_ON_POLICY = ("rul1defaultrule0d697", "Default Rule", "0pp1signonpol0d697",
                  "Default Policy")

# The attacker: a hosting provider's address, a scripting client, the login `admin`.
ATTACK = {
    "ip": "203.0.113.201",
    "place": ("Amsterdam", "North Holland", "Netherlands", "1012", 52.3740, 4.8897),
    "isp": "hosting solutions bv",
    "domain": "hosting-solutions.example",
    "asn": 64512,
    "user_agent": ("python-requests/2.32.3", "Unknown", "UNKNOWN"),
    "login": "admin",
    "start": DAY.replace(hour=13, minute=12, second=7),
}


class Day:
    """Builds the day's events with one seeded random source."""

    def __init__(self):
        self.rng = random.Random(SEED)
        self.events = []

    def token(self, prefix, length):
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return prefix + "".join(self.rng.choice(alphabet) for _ in range(length))

    def hexdigest(self):
        return hashlib.sha256(str(self.rng.random()).encode()).hexdigest()

    def add(self, when, event_type, legacy, message, severity, actor, client, outcome,
            target=None, transaction=None, auth=None, debug=None, security=None):
        number = len(self.events)
        published = when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"
        geo = client.get("geographicalContext")
        event = {
            "uuid": str(uuid.uuid5(UUID_NAMESPACE, f"{number}:{published}:{event_type}")),
            "published": published,
            "eventType": event_type,
            "version": "0",
            "severity": severity,
            "legacyEventType": legacy,
            "displayMessage": message,
            "actor": actor,
            "client": client,
            "device": None,
            "authenticationContext": {
                "authenticationProvider": None,
                "credentialProvider": None,
                "credentialType": None,
                "issuer": None,
                "interface": None,
                "authenticationStep": 0,
                "externalSessionId": "unknown",
                **(auth or {}),
            },
            "outcome": outcome,
            "target": target,
            "transaction": transaction or {"type": "WEB", "id": self.token("", 24),
                                           "detail": {}},
            "debugContext": {"debugData": {
                "requestId": self.token("", 24),
                "dtHash": self.hexdigest(),
                "threatSuspected": "false",
                **(debug or {}),
            }},
            "securityContext": security,
            "request": {"ipChain": [{
                "ip": client["ipAddress"],
                "geographicalContext": geo,
                "version": "V4",
                "source": None,
            }]},
        }
        self.events.append(event)


def place_client(place_key, browser_key, device):
    city, state, country, postal, lat, lon, ip = PLACES[place_key][:7]
    raw, os_name, browser = BROWSERS[browser_key]
    return {
        "userAgent": {"rawUserAgent": raw, "os": os_name, "browser": browser},
        "zone": "null",
        "device": device,
        "id": None,
        "ipAddress": ip,
        "geographicalContext": {
            "city": city, "state": state, "country": country, "postalCode": postal,
            "geolocation": {"lat": lat, "lon": lon},
        },
    }


def place_security(place_key):
    isp, domain, asn = PLACES[place_key][7:]
    return {"asNumber": asn, "asOrg": isp.split(" ")[0], "isp": isp, "domain": domain,
            "isProxy": False}


def user_actor(user_id, login, name):
    return {"id": user_id, "type": "User", "alternateId": f"{login}@{DOMAIN}",
            "displayName": name, "detailEntry": None}


def user_id_of(login):
    return "00u" + hashlib.sha256(login.encode()).hexdigest()[:13] + "d697"


def sign_in(day, when, user, mistype):
    """One employee's sign-in: an optional mistyped password, then session start, policy,
    MFA and single sign-on to a few apps, all under one transaction id."""
    login, name, place, browser, factor, _ = user
    device = "Mobile" if browser == "iphone" else "Computer"
    client = place_client(place, browser, device)
    security = place_security(place)
    actor = user_actor(user_id_of(login), login, name)
    password_auth = {"authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
                     "credentialType": "PASSWORD", "interface": None}
    if mistype:
        day.add(when, "user.session.start", "core.user_auth.login_failed",
                "User login to Okta", "WARN", actor, client,
                {"result": "FAILURE", "reason": "INVALID_CREDENTIALS"},
                auth=password_auth, security=security,
                debug={"requestUri": "/idp/idx/challenge/answer",
                       "url": "/idp/idx/challenge/answer?"})
        when += datetime.timedelta(seconds=day.rng.randint(8, 40),
                                   milliseconds=day.rng.randint(0, 999))
    session = day.token("102", 22)
    transaction = {"type": "WEB", "id": day.token("", 24), "detail": {}}
    auth = dict(password_auth, externalSessionId=session)
    day.add(when, "user.session.start", "core.user_auth.login_success",
            "User login to Okta", "INFO", actor, client, {"result": "SUCCESS", "reason": None},
            transaction=transaction, auth=auth, security=security,
            debug={"requestUri": "/idp/idx/identify", "url": "/idp/idx/identify?"})
    when += datetime.timedelta(milliseconds=day.rng.randint(30, 90))
    challenge = day.rng.random() < 0.3
    rule_id, rule_name, policy_id, policy_name = SIGN_ON_POLICY
    verdict = "CHALLENGE" if challenge else "ALLOW"
    day.add(when, "policy.evaluate_sign_on", None, "Evaluation of sign-on policy", "INFO",
            actor, client,
            {"result": verdict,
             "reason": f"Sign-on policy evaluation resulted in {verdict}"},
            target=[{"id": policy_id, "type": "PolicyEntity", "alternateId": "unknown",
                     "displayName": policy_name, "detailEntry": {"policyType": "OktaSignOn"}},
                    {"id": rule_id, "type": "PolicyRule", "alternateId": "unknown",
                     "displayName": rule_name, "detailEntry": None}],
            transaction=transaction, auth=auth, security=security,
            debug={"behaviors": "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, "
                                "New IP=NEGATIVE, New State=NEGATIVE, New Country=NEGATIVE, "
                                "Velocity=NEGATIVE, New City=NEGATIVE}",
                   "risk": "{level=LOW}"})
    when += datetime.timedelta(seconds=day.rng.randint(3, 20),
                               milliseconds=day.rng.randint(0, 999))
    day.add(when, "user.authentication.auth_via_mfa", "core.user.factor.attempt_success",
            "Authentication of user via MFA", "INFO", actor, client,
            {"result": "SUCCESS", "reason": None},
            transaction=transaction,
            auth=dict(auth, credentialProvider="OKTA_CREDENTIAL_PROVIDER",
                      credentialType="OTP" if factor == "TOTP" else None, authenticationStep=1),
            security=security, debug={"factor": factor})
    for app_id, app_name, app_key in day.rng.sample(APPS, day.rng.randint(1, 4)):
        when += datetime.timedelta(seconds=day.rng.randint(20, 900),
                                   milliseconds=day.rng.randint(0, 999))
        day.add(when, "user.authentication.sso", "app.auth.sso",
                "User single sign on to app", "INFO", actor, client,
                {"result": "SUCCESS", "reason": None},
                target=[{"id": app_id, "type": "AppInstance", "alternateId": app_name,
                         "displayName": app_name, "detailEntry": {"signOnModeType": "SAML_2_0"}},
                        {"id": "0ua" + hashlib.sha256((login + app_key).encode()).hexdigest()[:13]
                         + "d697", "type": "AppUser", "alternateId": f"{login}@{DOMAIN}",
                         "displayName": name, "detailEntry": None}],
                auth=auth, security=security,
                debug={"initiationType": "IDP_INITIATED", "signOnMode": "SAML 2.0",
                       "requestUri": f"/app/{app_key}/{app_id}/sso/saml",
                       "url": f"/app/{app_key}/{app_id}/sso/saml?"})
    return when, actor, client, auth, security


def sign_out(day, when, actor, client, auth, security):
    day.add(when, "user.session.end", "core.user_auth.logout_success", "User logout from Okta",
            "INFO", actor, client, {"result": "SUCCESS", "reason": None}, auth=auth,
            security=security, debug={"requestUri": "/login/signout", "url": "/login/signout?"})


def attack(day):
    city, state, country, postal, lat, lon = ATTACK["place"]
    raw, os_name, browser = ATTACK["user_agent"]
    client = {
        "userAgent": {"rawUserAgent": raw, "os": os_name, "browser": browser},
        "zone": "null", "device": "Unknown", "id": None, "ipAddress": ATTACK["ip"],
        "geographicalContext": {"city": city, "state": state, "country": country,
                                "postalCode": postal, "geolocation": {"lat": lat, "lon": lon}},
    }
    security = {"asNumber": ATTACK["asn"], "asOrg": ATTACK["isp"], "isp": ATTACK["isp"],
                "domain": ATTACK["domain"], "isProxy": False}
    # Okta records the login as typed; an unknown user has the actor id "unknown".
    actor = {"id": "unknown", "type": "User", "alternateId": ATTACK["login"],
             "displayName": "unknown", "detailEntry": None}
    when = ATTACK["start"]
    for attempt in range(5):
        day.add(when, "user.session.start", "core.user_auth.login_failed",
                "User login to Okta", "WARN", actor, client,
                {"result": "FAILURE",
                 "reason": "VERIFICATION_ERROR" if attempt == 0 else "INVALID_CREDENTIALS"},
                auth={"authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
                      "credentialType": "PASSWORD"},
                security=security,
                debug={"requestUri": "/api/v1/authn", "url": "/api/v1/authn?"})
        when += datetime.timedelta(seconds=day.rng.randint(25, 55),
                                   milliseconds=day.rng.randint(0, 999))


def build():
    day = Day()
    for user in USERS:
        place = user[2]
        start_hour = user[5]
        # Local start of the working day, in UTC.
        offset = datetime.timedelta(hours=UTC_OFFSET[place])
        first = DAY + datetime.timedelta(hours=start_hour, minutes=day.rng.randint(0, 50),
                                         seconds=day.rng.randint(0, 59),
                                         milliseconds=day.rng.randint(0, 999)) - offset
        sessions = day.rng.choice((2, 3, 3))
        when = first
        for number in range(sessions):
            mistype = day.rng.random() < 0.2
            when, actor, client, auth, security = sign_in(day, when, user, mistype)
            if day.rng.random() < 0.5:
                when += datetime.timedelta(minutes=day.rng.randint(20, 200))
                sign_out(day, when, actor, client, auth, security)
            when += datetime.timedelta(minutes=day.rng.randint(40, 180),
                                       milliseconds=day.rng.randint(0, 999))
    attack(day)
    # Sign-ins late in the day may run past midnight; the sample keeps one UTC day.
    date = DAY.strftime("%Y-%m-%d")
    events = [event for event in day.events if event["published"].startswith(date)]
    events.sort(key=lambda event: (event["published"], event["uuid"]))
    return events


def check(events):
    """The properties the README relies on; raises AssertionError when one does not hold."""
    uuids = {event["uuid"] for event in events}
    assert len(uuids) == len(events), "uuids are not unique"
    failures = collections.defaultdict(list)   # ip -> [(published, login)]
    countries = collections.defaultdict(set)   # login -> countries of successful sign-ins
    networks = collections.defaultdict(set)    # session -> ips
    for event in events:
        ip = event["client"]["ipAddress"]
        login = event["actor"]["alternateId"]
        result = (event.get("outcome") or {}).get("result")
        if event["eventType"] == "user.session.start" and result == "FAILURE":
            failures[ip].append((event["published"], login))
        if event["eventType"] == "user.session.start" and result == "SUCCESS":
            countries[login].add(event["client"]["geographicalContext"]["country"])
        session = event["authenticationContext"]["externalSessionId"]
        if session != "unknown":
            networks[session].add(ip)
    attack_failures = failures.pop(ATTACK["ip"])
    assert [login for _, login in attack_failures] == [ATTACK["login"]] * 5, attack_failures
    for ip, seen in failures.items():
        # Fewer than five failures, and fewer than five failing accounts, per IP all day.
        assert len(seen) < 5 and len({login for _, login in seen}) < 5, (ip, seen)
    assert all(len(found) == 1 for found in countries.values()), countries
    assert all(len(found) == 1 for found in networks.values()), networks
    assert len({event["actor"]["alternateId"] for event in events}) >= 10
    assert len({event["client"]["geographicalContext"]["country"] for event in events}) >= 6


def render(events):
    return "".join(json.dumps(event, separators=(",", ":")) + "\n" for event in events)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    here = os.path.dirname(os.path.abspath(__file__))
    parser.add_argument("--out", default=os.path.join(here, "okta-events.jsonl"),
                        help="file to write (default: okta-events.jsonl beside this script)")
    parser.add_argument("--check", action="store_true",
                        help="do not write; exit 1 if --out differs from what would be written")
    args = parser.parse_args()
    events = build()
    check(events)
    text = render(events)
    if args.check:
        try:
            with open(args.out, encoding="utf-8") as current:
                same = current.read() == text
        except FileNotFoundError:
            same = False
        if not same:
            print(f"{args.out} is out of date: run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    with open(args.out, "w", encoding="utf-8") as out:
        out.write(text)
    print(f"wrote {len(events)} events to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
