#!/usr/bin/python3
"""Deterministic generator of realistic Okta System Log API events (JSON lines).

The same seed and event count always produce the same bytes. Events look like
what GET /api/v1/logs returns: camelCase fields, JSON nulls where Okta sends
them (outcome.reason, client.id, transaction.detail, target, ...), the string
"null" for client.zone, string-typed debugData, millisecond `published` in
RFC 3339 with `Z`, a unique `uuid` each, and about 2 KB per event.

The stream is an organisation's day: users sign in (user.session.start,
policy.evaluate_sign_on, user.authentication.auth_via_mfa, then SSO to apps),
with a realistic share of failures, logouts, group and app changes and rare
security events. Injected into it are attack episodes that the bundled rule
pack detects:

  spray     one hosting-provider IP fails to sign in to many accounts
            (Okta.PasswordSpray, Okta.FailedLogin, Okta.ThreatInsight.Detected)
  brute     repeated failures for one account, "admin" among them, ending in a
            lockout (Okta.FailedLogin "Multiple Failed Logins", Okta.AccountLocked)
  push      a flood of denied Okta Verify pushes, then one accepted
            (Okta.MFA.PushBombing, both the denial and the acceptance alerts)
  takeover  an admin's account used from a new country to grant admin roles,
            create an API token and an identity provider, reset a user's MFA
            and grant Okta Support access (Okta.Login.NewCountry,
            Okta.AdminRoleGranted, Okta.APIToken.Created,
            Okta.IdentityProvider.Changed, Okta.MFA.FactorRemoved,
            Okta.Support.AccessGranted)
  theft     a live session replayed from another network and browser
            (Okta.Session.NewNetwork)

Usage: okta_gen.py --events N [--seed S] [--out FILE] [--start 2026-03-02T07:00:00Z]
Prints a one-line JSON summary (events, bytes, episodes) on stderr.
"""

import argparse
import calendar
import json
import random
import sys
import time

DOMAIN = "example-corp.com"
ORG_ID = "00o1bench0rg0000d697"

FIRST = (
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara "
    "richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy "
    "matthew betty anthony margaret mark sandra donald ashley steven kimberly paul emily andrew "
    "donna joshua michelle kenneth carol kevin amanda brian dorothy george melissa timothy "
    "deborah ronald stephanie edward rebecca jason sharon jeffrey laura ryan cynthia jacob "
    "kathleen gary amy nicholas angela eric shirley jonathan anna stephen brenda larry pamela "
    "justin emma scott nicole brandon helen benjamin samantha samuel katherine gregory christine "
    "alexander debra frank rachel patrick carolyn raymond janet jack catherine dennis maria "
    "jerry heather tyler diane aaron ruth jose julie adam olivia henry joyce nathan virginia"
).split()
LAST = (
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
    "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill "
    "flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips "
    "evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook "
    "rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward "
    "richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez"
).split()

# (city, state, country, postalCode, lat, lon)
HOME_PLACES = (
    ("San Francisco", "California", "United States", "94107", 37.7697, -122.3933),
    ("Oakland", "California", "United States", "94612", 37.8044, -122.2712),
    ("Seattle", "Washington", "United States", "98101", 47.6101, -122.3344),
    ("Austin", "Texas", "United States", "78701", 30.2711, -97.7437),
    ("New York", "New York", "United States", "10013", 40.7209, -74.0050),
    ("Brooklyn", "New York", "United States", "11201", 40.6943, -73.9903),
    ("Chicago", "Illinois", "United States", "60601", 41.8858, -87.6181),
    ("Denver", "Colorado", "United States", "80202", 39.7525, -104.9995),
    ("Boston", "Massachusetts", "United States", "02110", 42.3572, -71.0510),
    ("Atlanta", "Georgia", "United States", "30303", 33.7529, -84.3925),
    ("Toronto", "Ontario", "Canada", "M5H", 43.6511, -79.3837),
    ("London", "England", "United Kingdom", "EC2V", 51.5154, -0.0922),
    ("Dublin", "Leinster", "Ireland", "D02", 53.3382, -6.2591),
)
# (asNumber, asOrg, isp, domain) of residential and office networks.
HOME_NETS = (
    (7922, "comcast", "comcast cable communications llc", "comcast.net"),
    (7018, "at&t services, inc.", "at&t internet", "att.net"),
    (701, "verizon business", "verizon fios", "verizon.net"),
    (20115, "charter communications", "spectrum", "charter.com"),
    (22773, "cox communications inc.", "cox communications", "cox.net"),
    (812, "rogers communications canada inc.", "rogers", "rogers.com"),
    (5089, "virgin media limited", "virgin media", "virginmedia.com"),
    (6830, "liberty global b.v.", "virgin media ireland", "upc.ie"),
)
OFFICE_NET = (394425, "example corp", "example corp", DOMAIN)
# Attacker infrastructure: (asNumber, asOrg, isp, domain, city, state, country, postal, lat, lon)
BAD_NETS = (
    (9009, "m247 europe srl", "m247 ltd", "m247.com", "Bucharest", "Bucuresti", "Romania",
     "010011", 44.4268, 26.1025),
    (16276, "ovh sas", "ovh sas", "ovh.net", "Roubaix", "Hauts-de-France", "France", "59100",
     50.6942, 3.1746),
    (14061, "digitalocean, llc", "digitalocean", "digitalocean.com", "Amsterdam",
     "North Holland", "Netherlands", "1012", 52.3740, 4.8897),
    (60068, "datacamp limited", "cdn77", "cdn77.com", "Sao Paulo", "Sao Paulo", "Brazil",
     "01000", -23.5475, -46.6361),
    (200019, "alexhost srl", "alexhost", "alexhost.com", "Chisinau", "Chisinau", "Moldova",
     "2001", 47.0056, 28.8575),
)
USER_AGENTS = (
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/122.0.0.0 Safari/537.36", "Mac OS X", "CHROME"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/122.0.0.0 Safari/537.36 Edg/122.0.2365.66", "Windows 10", "EDGE"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:123.0) Gecko/20100101 Firefox/123.0",
     "Windows 10", "FIREFOX"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.3.1 Safari/605.1.15", "Mac OS X", "SAFARI"),
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_3_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.3.1 Mobile/15E148 Safari/604.1", "iOS", "MOBILE_SAFARI"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/121.0.0.0 Safari/537.36", "Linux", "CHROME"),
)
BAD_AGENTS = (
    ("python-requests/2.31.0", "Unknown", "UNKNOWN"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/109.0.0.0 Safari/537.36", "Windows 10", "CHROME"),
    ("okhttp/4.9.3", "Unknown", "UNKNOWN"),
)
APPS = (
    ("Slack", "slack", "SAML 2.0", "SAML_2_0"),
    ("Google Workspace", "google", "SAML 2.0", "SAML_2_0"),
    ("Salesforce.com", "salesforce", "SAML 2.0", "SAML_2_0"),
    ("Zoom", "zoom", "SAML 2.0", "SAML_2_0"),
    ("GitHub Enterprise Cloud", "githubcloud", "SAML 2.0", "SAML_2_0"),
    ("AWS IAM Identity Center", "amazon_aws_sso", "SAML 2.0", "SAML_2_0"),
    ("Atlassian Cloud", "atlassian", "SAML 2.0", "SAML_2_0"),
    ("Workday", "workday", "SAML 2.0", "SAML_2_0"),
    ("Box", "boxnet", "SAML 2.0", "SAML_2_0"),
    ("Tableau Online", "tableau", "OpenID Connect", "OPENID_CONNECT"),
)
GROUPS = ("Engineering", "Sales", "Finance", "Support", "Marketing", "IT Admins", "Contractors")
ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
HEX = "0123456789abcdef"


class Org:
    """The simulated organisation: users with homes, devices and admins."""

    def __init__(self, rng, n_users):
        self.users = []
        seen = set()
        for i in range(n_users):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            login = f"{first}.{last}@{DOMAIN}"
            if login in seen:
                login = f"{first}.{last}{i}@{DOMAIN}"
            seen.add(login)
            self.users.append(self._user(rng, login, f"{first.title()} {last.title()}"))
        # The break-glass admin account the brute-force episode targets, and a few named
        # administrators for the takeover episode.
        self.admin = self._user(rng, f"admin@{DOMAIN}", "Okta Administrator")
        self.admins = [self._user(rng, f"it.admin{i}@{DOMAIN}", f"IT Admin {i}") for i in range(3)]
        self.all_users = self.users + [self.admin] + self.admins
        office_ips = [f"198.51.100.{rng.randint(2, 250)}" for _ in range(4)]
        for user in self.all_users:
            if rng.random() < 0.15:
                user["ip"] = rng.choice(office_ips)
                user["net"] = OFFICE_NET
                user["place"] = HOME_PLACES[0]

    @staticmethod
    def _user(rng, login, name):
        net = rng.choice(HOME_NETS)
        place = rng.choice(HOME_PLACES[:10] if net[0] < 800 or net[0] > 10000 else HOME_PLACES)
        if net[0] == 812:
            place = HOME_PLACES[10]
        elif net[0] == 5089:
            place = HOME_PLACES[11]
        elif net[0] == 6830:
            place = HOME_PLACES[12]
        return {
            "id": "00u" + rand_str(rng, ALNUM, 13) + "d697",
            "login": login,
            "name": name,
            "ip": public_ip(rng),
            "net": net,
            "place": place,
            "ua": rng.choice(USER_AGENTS),
        }


def rand_str(rng, alphabet, n):
    return "".join(rng.choice(alphabet) for _ in range(n))


def public_ip(rng):
    first = rng.choice((24, 47, 50, 67, 68, 69, 71, 73, 75, 76, 96, 98, 99, 107, 108, 174))
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def iso(ms):
    secs, milli = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{milli:03d}Z"


class Writer:
    """Renders planned events into Okta JSON, in timeline order."""

    def __init__(self, rng, org):
        self.rng = rng
        self.org = org

    def uuid(self):
        r = self.rng.getrandbits(128)
        h = f"{r:032x}"
        return f"{h[:8]}-{h[8:12]}-1{h[13:16]}-{'89ab'[r & 3]}{h[17:20]}-{h[20:32]}"

    def geo(self, place):
        city, state, country, postal, lat, lon = place
        return {
            "city": city,
            "state": state,
            "country": country,
            "postalCode": postal,
            "geolocation": {"lat": lat, "lon": lon},
        }

    def client(self, ip, place, ua, zone="null"):
        return {
            "userAgent": {"rawUserAgent": ua[0], "os": ua[1], "browser": ua[2]},
            "zone": zone,
            "device": "Mobile" if ua[1] == "iOS" else "Computer",
            "id": None,
            "ipAddress": ip,
            "geographicalContext": self.geo(place),
        }

    def security(self, net, proxy=False):
        return {"asNumber": net[0], "asOrg": net[1], "isp": net[2], "domain": net[3],
                "isProxy": proxy}

    def actor(self, user):
        return {"id": user["id"], "type": "User", "alternateId": user["login"],
                "displayName": user["name"], "detailEntry": None}

    def request(self, ip, place):
        return {"ipChain": [{"ip": ip, "geographicalContext": self.geo(place), "version": "V4",
                             "source": None}]}

    def debug(self, extra=None, uri="/api/v1/authn"):
        data = {
            "requestId": "Z" + rand_str(self.rng, HEX, 23),
            "requestUri": uri,
            "url": uri + "?",
            "dtHash": rand_str(self.rng, HEX, 64),
            "threatSuspected": "false",
            "behaviors": "{New Geo-Location=NEGATIVE, New Device=NEGATIVE, New IP=NEGATIVE, "
                         "New State=NEGATIVE, New Country=NEGATIVE, Velocity=NEGATIVE, "
                         "New City=NEGATIVE}",
            "risk": "{level=LOW}",
        }
        if extra:
            data.update(extra)
        return {"debugData": data}

    def event(self, ms, etype, legacy, message, user, ip, place, ua, net, outcome, reason,
              session=None, target=None, debug=None, severity="INFO", txn=None, proxy=False,
              auth=None, uri="/api/v1/authn"):
        authctx = {
            "authenticationProvider": None,
            "credentialProvider": None,
            "credentialType": None,
            "issuer": None,
            "interface": None,
            "authenticationStep": 0,
            "externalSessionId": session or "unknown",
        }
        if auth:
            authctx.update(auth)
        return {
            "actor": self.actor(user) if isinstance(user, dict) and "login" in user else user,
            "client": self.client(ip, place, ua),
            "device": None,
            "authenticationContext": authctx,
            "displayMessage": message,
            "eventType": etype,
            "outcome": None if outcome is None else {"result": outcome, "reason": reason},
            "published": iso(ms),
            "securityContext": self.security(net, proxy),
            "severity": severity,
            "debugContext": self.debug(debug, uri),
            "legacyEventType": legacy,
            "transaction": {"type": "WEB", "id": txn or "Z" + rand_str(self.rng, HEX, 23),
                            "detail": {}},
            "uuid": self.uuid(),
            "version": "0",
            "request": self.request(ip, place),
            "target": target,
        }


def user_target(user, kind="User"):
    return {"id": user["id"], "type": kind, "alternateId": user["login"],
            "displayName": user["name"], "detailEntry": None}


def app_target(app):
    return {"id": "0oa" + app[1][:8].ljust(8, "x") + "bench0d697", "type": "AppInstance",
            "alternateId": app[0], "displayName": app[0],
            "detailEntry": {"signOnModeType": app[3]}}


# ---------------------------------------------------------------------------
# Planning: every event is planned as (ms, seq, kind, args); the plan is sorted by
# time (then seq) and rendered in that order.


class Planner:
    def __init__(self, rng, org, start_ms, span_ms):
        self.rng = rng
        self.org = org
        self.start_ms = start_ms
        self.span_ms = span_ms
        self.plan = []
        self.seq = 0
        self.episodes = {}

    def add(self, ms, kind, *args):
        self.plan.append((ms, self.seq, kind, args))
        self.seq += 1

    def session_id(self):
        return "102" + rand_str(self.rng, ALNUM, 22)

    # --- background ------------------------------------------------------
    def sign_in(self, ms, user, n_sso):
        """A successful sign-in: session start, policy, MFA, then SSO to apps, maybe logout.
        Returns the number of events planned."""
        rng = self.rng
        sid = self.session_id()
        txn = "Z" + rand_str(rng, HEX, 23)
        ip = user["ip"]
        # Mobile users churn addresses inside their provider's network.
        self.add(ms, "session_start", user, ip, sid, txn, "SUCCESS")
        self.add(ms + rng.randint(20, 80), "policy", user, ip, sid, txn)
        self.add(ms + rng.randint(900, 9000), "mfa", user, ip, sid, txn)
        count = 3
        t = ms + 10000
        for _ in range(n_sso):
            t += rng.randint(5000, 900000)
            sso_ip = ip
            if user["ua"][1] == "iOS" and rng.random() < 0.3:
                sso_ip = ip.rsplit(".", 1)[0] + f".{rng.randint(1, 254)}"
            self.add(t, "sso", user, sso_ip, sid, rng.choice(APPS))
            count += 1
        return count

    def background(self, budget):
        """Plans `budget` background events, spread over the span."""
        rng = self.rng
        users = self.org.all_users
        planned = 0
        # Events per ms of the span, so the day fills evenly.
        while planned < budget:
            ms = self.start_ms + rng.randint(0, self.span_ms)
            user = rng.choice(users)
            left = budget - planned
            roll = rng.random()
            if roll < 0.62 and left >= 4:
                planned += self.sign_in(ms, user, min(left - 3, rng.choice((1, 2, 2, 3, 3, 4, 6))))
            elif roll < 0.635:
                # A mistyped password from the user's usual place.
                self.add(ms, "session_start", user, user["ip"], None, None, "FAILURE")
                planned += 1
            elif roll < 0.74:
                self.add(ms, "session_end", user)
                planned += 1
            elif roll < 0.80:
                self.add(ms, "verify", user)
                planned += 1
            elif roll < 0.86:
                self.add(ms, "oauth_code", user, rng.choice(APPS))
                planned += 1
            elif roll < 0.90:
                self.add(ms, "policy_only", user)
                planned += 1
            elif roll < 0.935:
                self.add(ms, "group_add", rng.choice(self.org.admins), user, rng.choice(GROUPS))
                planned += 1
            elif roll < 0.965:
                self.add(ms, "app_add", rng.choice(self.org.admins), user, rng.choice(APPS))
                planned += 1
            elif roll < 0.985:
                self.add(ms, "factor_activate", user)
                planned += 1
            elif roll < 0.9945:
                self.add(ms, "rate_limit_warning", rng.choice(self.org.admins))
                planned += 1
            elif roll < 0.9955:
                # A user replacing their own security key: routine, LOW.
                self.add(ms, "factor_deactivate", user, user, "User reset FIDO_WEBAUTHN factor")
                planned += 1
            elif roll < 0.9962:
                self.add(ms, "threat", public_ip(rng), rng.choice(BAD_NETS), "DENY",
                         '{"Credential Stuffing":"MEDIUM"}')
                planned += 1
            elif roll < 0.9966:
                self.add(ms, "report_suspicious", user)
                planned += 1
            elif roll < 0.9972:
                # A user declining a push they did not expect.
                self.add(ms, "deny_push", user, user["ip"], user["net"], user["place"])
                planned += 1
            else:
                self.add(ms, "session_end", user)
                planned += 1
        return planned

    # --- episodes ---------------------------------------------------------
    def at(self, lo=0.05, hi=0.85):
        return self.start_ms + int(self.span_ms * self.rng.uniform(lo, hi))

    def spray(self):
        rng = self.rng
        bad = rng.choice(BAD_NETS)
        ip = f"{rng.choice((45, 89, 91, 185, 193))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ua = BAD_AGENTS[0]
        ms = self.at()
        victims = rng.sample(self.org.users, min(len(self.org.users), rng.randint(18, 30)))
        for victim in victims:
            ms += rng.randint(3000, 25000)
            self.add(ms, "attack_fail", victim, ip, bad, ua, "INVALID_CREDENTIALS")
        self.add(ms + 1500, "threat", ip, bad, "SUCCESS",
                 '{"Password Spray":"HIGH","Login failures":"MEDIUM"}')
        return len(victims) + 1

    def brute(self, target):
        rng = self.rng
        bad = rng.choice(BAD_NETS)
        ip = f"{rng.choice((37, 46, 77, 95, 176))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ua = rng.choice(BAD_AGENTS)
        ms = self.at()
        tries = rng.randint(8, 14)
        for _ in range(tries):
            ms += rng.randint(1500, 12000)
            self.add(ms, "attack_fail", target, ip, bad, ua, "INVALID_CREDENTIALS")
        self.add(ms + 200, "lock", target, ip, bad, ua)
        return tries + 1

    def push(self):
        rng = self.rng
        victim = rng.choice(self.org.users)
        bad = rng.choice(BAD_NETS)
        ip = f"185.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ms = self.at()
        denials = rng.randint(6, 11)
        for _ in range(denials):
            ms += rng.randint(8000, 40000)
            self.add(ms, "deny_push", victim, ip, bad[:4], bad[4:])
        ms += rng.randint(8000, 40000)
        self.add(ms, "push_accept", victim, ip, bad)
        return denials + 1

    def takeover(self):
        rng = self.rng
        admin = rng.choice(self.org.admins)
        bad = rng.choice(BAD_NETS)
        ip = f"{rng.choice((5, 31, 82, 103))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ua = BAD_AGENTS[1]
        # The admin's own sign-in earlier that day sets their country baseline.
        base = self.at(0.03, 0.4)
        count = self.sign_in(base, admin, 1)
        ms = base + rng.randint(3600000, 3 * 3600000)
        sid = self.session_id()
        txn = "Z" + rand_str(rng, HEX, 23)
        self.add(ms, "attack_login", admin, ip, bad, ua, sid, txn)
        self.add(ms + 60, "attack_admin_app", admin, ip, bad, ua, sid)
        new_admin = rng.choice(self.org.users)
        steps = [
            ("grant_user", new_admin, "Super Administrator"),
            ("grant_group", rng.choice(GROUPS), "Organization Administrator, Read Only Administrator"),
            ("api_token", "automation-" + rand_str(rng, HEX, 6)),
            ("idp_create", "Corp SSO (" + rand_str(rng, ALNUM, 5) + ")"),
            ("reset_factors", rng.choice(self.org.users)),
            ("support_grant",),
        ]
        for step in steps:
            ms += rng.randint(20000, 180000)
            self.add(ms, "admin_action", admin, ip, bad, ua, sid, step)
        return count + 2 + len(steps)

    def theft(self):
        rng = self.rng
        victim = rng.choice([u for u in self.org.users if u["ua"][1] != "iOS"])
        base = self.at(0.05, 0.7)
        sid = self.session_id()
        txn = "Z" + rand_str(rng, HEX, 23)
        self.add(base, "session_start", victim, victim["ip"], sid, txn, "SUCCESS")
        self.add(base + 50, "policy", victim, victim["ip"], sid, txn)
        self.add(base + 4000, "mfa", victim, victim["ip"], sid, txn)
        self.add(base + 60000, "sso", victim, victim["ip"], sid, rng.choice(APPS))
        bad = rng.choice(BAD_NETS)
        ip = f"{rng.choice((23, 64, 104, 172))}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        ms = base + rng.randint(600000, 5400000)
        replays = rng.randint(2, 4)
        for _ in range(replays):
            ms += rng.randint(5000, 120000)
            self.add(ms, "stolen_sso", victim, ip, bad, sid, rng.choice(APPS))
        return 4 + replays


def render(w, kind, args):
    """One planned event as an Okta LogEvent dict."""
    rng = w.rng
    if kind == "session_start":
        user, ip, sid, txn, result = args
        ok = result == "SUCCESS"
        return w.event(
            0, "user.session.start",
            "core.user_auth.login_success" if ok else "core.user_auth.login_failed",
            "User login to Okta", user, ip, user["place"], user["ua"], user["net"], result,
            None if ok else rng.choice(("INVALID_CREDENTIALS", "INVALID_CREDENTIALS",
                                        "VERIFICATION_ERROR")),
            session=sid, txn=txn, severity="INFO" if ok else "WARN",
            auth={"authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
                  "credentialType": "PASSWORD", "interface": None})
    if kind == "policy":
        user, ip, sid, txn = args
        return w.event(
            0, "policy.evaluate_sign_on", None,
            "Evaluation of sign-on policy", user, ip, user["place"], user["ua"], user["net"],
            "ALLOW", "Sign-on policy evaluation resulted in ALLOW", session=sid, txn=txn,
            target=[{"id": "00p1default0policy697", "type": "PolicyEntity",
                     "alternateId": "unknown", "displayName": "Default Policy",
                     "detailEntry": {"policyType": "OktaSignOn"}},
                    {"id": "0pr1default0rule0d697", "type": "PolicyRule",
                     "alternateId": "00p1default0policy697",
                     "displayName": "Require MFA off network", "detailEntry": None}],
            debug={"behaviors": None})
    if kind == "policy_only":
        (user,) = args
        return w.event(
            0, "policy.evaluate_sign_on", None, "Evaluation of sign-on policy", user,
            user["ip"], user["place"], user["ua"], user["net"],
            rng.choice(("ALLOW", "ALLOW", "CHALLENGE")),
            "Sign-on policy evaluation resulted in CHALLENGE", session="unknown",
            target=[{"id": "00p1default0policy697", "type": "PolicyEntity",
                     "alternateId": "unknown", "displayName": "Default Policy",
                     "detailEntry": {"policyType": "OktaSignOn"}}])
    if kind == "mfa":
        user, ip, sid, txn = args
        factor = rng.choice(("OKTA_VERIFY_PUSH", "OKTA_VERIFY_PUSH", "FIDO_WEBAUTHN", "TOTP"))
        return w.event(
            0, "user.authentication.auth_via_mfa", "core.user.factor.attempt_success",
            "Authentication of user via MFA", user, ip, user["place"], user["ua"], user["net"],
            "SUCCESS", None, session=sid, txn=txn,
            auth={"authenticationProvider": "FACTOR_PROVIDER",
                  "credentialProvider": "OKTA_CREDENTIAL_PROVIDER",
                  "credentialType": "OTP" if factor == "TOTP" else None},
            debug={"factor": factor, "factorIntent": "AUTHENTICATION"})
    if kind == "sso":
        user, ip, sid, app = args
        return w.event(
            0, "user.authentication.sso", "app.auth.sso", "User single sign on to app", user,
            ip, user["place"], user["ua"], user["net"], "SUCCESS", None, session=sid,
            target=[app_target(app), user_target(user, "AppUser")],
            uri=f"/app/{app[1]}/exk1{app[1][:6]}saml/sso/saml",
            debug={"signOnMode": app[2], "initiationType": "SP_INITIATED"})
    if kind == "stolen_sso":
        user, ip, bad, sid, app = args
        return w.event(
            0, "user.authentication.sso", "app.auth.sso", "User single sign on to app", user,
            ip, bad[4:], BAD_AGENTS[2], bad[:4], "SUCCESS", None, session=sid,
            target=[app_target(app), user_target(user, "AppUser")],
            uri=f"/app/{app[1]}/exk1{app[1][:6]}saml/sso/saml",
            debug={"signOnMode": app[2], "initiationType": "IDP_INITIATED"})
    if kind == "session_end":
        (user,) = args
        return w.event(0, "user.session.end", "core.user_auth.logout_success",
                       "User logout from Okta", user, user["ip"], user["place"], user["ua"],
                       user["net"], "SUCCESS", None, session="102" + rand_str(rng, ALNUM, 22))
    if kind == "verify":
        (user,) = args
        return w.event(0, "user.authentication.verify", None, "Verify user identity", user,
                       user["ip"], user["place"], user["ua"], user["net"], "SUCCESS", None,
                       auth={"credentialType": "PASSWORD"}, uri="/idp/idx/identify")
    if kind == "oauth_code":
        user, app = args
        return w.event(0, "app.oauth2.authorize.code", None, "OAuth2 authorization code request",
                       user, user["ip"], user["place"], user["ua"], user["net"], "SUCCESS", None,
                       target=[app_target(app)], uri="/oauth2/v1/authorize",
                       debug={"grantType": "authorization_code", "grantedScopes": "openid profile email"})
    if kind == "group_add":
        admin, user, group = args
        return w.event(0, "group.user_membership.add", "core.user_group_member.user_add",
                       "Add user to group membership", admin, admin["ip"], admin["place"],
                       admin["ua"], admin["net"], "SUCCESS", None,
                       target=[user_target(user),
                               {"id": "00g" + rand_str(rng, ALNUM, 13) + "d697",
                                "type": "UserGroup", "alternateId": "unknown",
                                "displayName": group, "detailEntry": None}],
                       uri="/api/v1/groups")
    if kind == "app_add":
        admin, user, app = args
        return w.event(0, "application.user_membership.add", "app.generic.provision.assign_user_to_app",
                       "Add user to application membership", admin, admin["ip"],
                       admin["place"], admin["ua"], admin["net"], "SUCCESS", None,
                       target=[{"id": "0ua" + rand_str(rng, ALNUM, 13) + "d697",
                                "type": "AppUser", "alternateId": user["login"],
                                "displayName": user["name"], "detailEntry": None},
                               app_target(app), user_target(user)], uri="/api/v1/apps")
    if kind == "factor_activate":
        (user,) = args
        return w.event(0, "user.mfa.factor.activate", "core.user.factor.activate",
                       "User set up OKTA_VERIFY_PUSH factor", user, user["ip"], user["place"],
                       user["ua"], user["net"], "SUCCESS", None, target=[user_target(user)],
                       debug={"factor": "OKTA_VERIFY_PUSH"})
    if kind == "factor_deactivate":
        actor, user, reason = args
        return w.event(0, "user.mfa.factor.deactivate", "core.user.factor.deactivate",
                       "Reset factor for user", actor, actor["ip"], actor["place"],
                       actor["ua"], actor["net"], "SUCCESS", reason, target=[user_target(user)])
    if kind == "rate_limit_warning":
        (admin,) = args
        return w.event(0, "system.org.rate_limit.warning", None,
                       "Rate limit warning", {"id": ORG_ID, "type": "PublicClientApp",
                                              "alternateId": "unknown", "displayName": "Okta",
                                              "detailEntry": None},
                       admin["ip"], admin["place"], admin["ua"], admin["net"], "SUCCESS", None,
                       severity="WARN", uri="/api/v1/users",
                       debug={"threshold": "60", "timeSpan": "1", "timeUnit": "MINUTES",
                              "operationRateLimitScopeType": "Org"})
    if kind == "threat":
        ip, bad, result, detections = args
        return w.event(0, "security.threat.detected", "security.threat.detected",
                       "Request from suspicious actor",
                       {"id": "unknown", "type": "User", "alternateId": "unknown",
                        "displayName": "unknown", "detailEntry": None},
                       ip, bad[4:], BAD_AGENTS[0], bad[:4], result,
                       "Password Spray" if "Spray" in detections else "Credential Stuffing",
                       severity="WARN", debug={"threatDetections": detections,
                                               "threatSuspected": "true"})
    if kind == "report_suspicious":
        (user,) = args
        return w.event(0, "user.account.report_suspicious_activity_by_enduser", None,
                       "User report suspicious activity", user, user["ip"], user["place"],
                       user["ua"], user["net"], "SUCCESS", None, severity="WARN",
                       debug={"suspiciousActivityEventType": "user.session.start",
                              "suspiciousActivityEventId": w.uuid(),
                              "suspiciousActivityEventIp": public_ip(rng),
                              "suspiciousActivityEventCity": "Lagos",
                              "suspiciousActivityEventCountry": "Nigeria",
                              "suspiciousActivityBrowser": "CHROME",
                              "suspiciousActivityOs": "Windows 10",
                              "suspiciousActivityTimestamp": "2026-03-01T23:11:04.000Z"})
    if kind == "deny_push":
        user, ip, net, place = args
        return w.event(0, "user.mfa.okta_verify.deny_push", "core.user.factor.attempt_fail",
                       "User rejected Okta push verify", user, ip, place, user["ua"], net,
                       "FAILURE", "User rejected Okta push verify",
                       auth={"authenticationProvider": "FACTOR_PROVIDER"},
                       debug={"factor": "OKTA_VERIFY_PUSH"})
    if kind == "push_accept":
        user, ip, bad = args
        return w.event(0, "user.authentication.auth_via_mfa", "core.user.factor.attempt_success",
                       "Authentication of user via MFA", user, ip, bad[4:], user["ua"], bad[:4],
                       "SUCCESS", None, auth={"authenticationProvider": "FACTOR_PROVIDER",
                                              "credentialProvider": "OKTA_CREDENTIAL_PROVIDER"},
                       debug={"factor": "OKTA_VERIFY_PUSH", "factorIntent": "AUTHENTICATION"})
    if kind == "attack_fail":
        user, ip, bad, ua, reason = args
        return w.event(0, "user.session.start", "core.user_auth.login_failed",
                       "User login to Okta", user, ip, bad[4:], ua, bad[:4], "FAILURE", reason,
                       severity="WARN", proxy=True,
                       auth={"authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
                             "credentialType": "PASSWORD"},
                       debug={"threatSuspected": "true",
                              "behaviors": "{New Geo-Location=POSITIVE, New Device=POSITIVE, "
                                           "New IP=POSITIVE, New State=POSITIVE, "
                                           "New Country=POSITIVE, Velocity=POSITIVE, "
                                           "New City=POSITIVE}",
                              "risk": "{level=HIGH}"})
    if kind == "lock":
        user, ip, bad, ua = args
        return w.event(0, "user.account.lock", "core.user_auth.account_locked",
                       "Max sign in attempts exceeded", user, ip, bad[4:], ua, bad[:4],
                       "FAILURE", "LOCKED_OUT", severity="WARN", proxy=True,
                       debug={"threatSuspected": "true"})
    if kind == "attack_login":
        user, ip, bad, ua, sid, txn = args
        return w.event(0, "user.session.start", "core.user_auth.login_success",
                       "User login to Okta", user, ip, bad[4:], ua, bad[:4], "SUCCESS", None,
                       session=sid, txn=txn,
                       auth={"authenticationProvider": "OKTA_AUTHENTICATION_PROVIDER",
                             "credentialType": "PASSWORD"},
                       debug={"behaviors": "{New Geo-Location=POSITIVE, New Device=POSITIVE, "
                                           "New IP=POSITIVE, New State=POSITIVE, "
                                           "New Country=POSITIVE, Velocity=POSITIVE, "
                                           "New City=POSITIVE}", "risk": "{level=HIGH}"})
    if kind == "attack_admin_app":
        user, ip, bad, ua, sid = args
        return w.event(0, "user.session.access_admin_app", None,
                       "User accessing Okta admin app", user, ip, bad[4:], ua, bad[:4],
                       "SUCCESS", None, session=sid, uri="/admin/sso/request",
                       target=[{"id": "0oa1adminconsole0d697", "type": "AppInstance",
                                "alternateId": "Okta Admin Console",
                                "displayName": "Okta Admin Console", "detailEntry": None}])
    if kind == "admin_action":
        user, ip, bad, ua, sid, step = args
        common = dict(session=sid, severity="INFO")
        place, net = bad[4:], bad[:4]
        what = step[0]
        if what == "grant_user":
            grantee, role = step[1], step[2]
            return w.event(0, "user.account.privilege.grant", "core.user.admin_privilege.granted",
                           "Grant user privilege", user, ip, place, ua, net, "SUCCESS", None,
                           target=[user_target(grantee)], uri="/api/v1/users/roles",
                           debug={"privilegeGranted": role}, **common)
        if what == "grant_group":
            group, roles = step[1], step[2]
            return w.event(0, "group.privilege.grant", None, "Grant group privilege", user, ip,
                           place, ua, net, "SUCCESS", None,
                           target=[{"id": "00g" + rand_str(rng, ALNUM, 13) + "d697",
                                    "type": "UserGroup", "alternateId": "unknown",
                                    "displayName": group, "detailEntry": None}],
                           uri="/api/v1/groups/roles", debug={"privilegeGranted": roles},
                           **common)
        if what == "api_token":
            return w.event(0, "system.api_token.create", "api.token.create",
                           "Create API token", user, ip, place, ua, net, "SUCCESS", None,
                           target=[{"id": "00T" + rand_str(rng, ALNUM, 13) + "d697",
                                    "type": "Token", "alternateId": "unknown",
                                    "displayName": step[1], "detailEntry": None}],
                           uri="/api/internal/tokens", **common)
        if what == "idp_create":
            return w.event(0, "system.idp.lifecycle.create", None,
                           "Create Identity Provider", user, ip, place, ua, net, "SUCCESS", None,
                           target=[{"id": "0oa" + rand_str(rng, ALNUM, 13) + "d697",
                                    "type": "IdentityProvider", "alternateId": "unknown",
                                    "displayName": step[1], "detailEntry": None}],
                           uri="/api/v1/idps", **common)
        if what == "reset_factors":
            victim = step[1]
            return w.event(0, "user.mfa.factor.reset_all", "core.user.factor.reset_all",
                           "Reset all factors for user", user, ip, place, ua, net, "SUCCESS",
                           None, target=[user_target(victim)],
                           uri=f"/api/v1/users/{victim['id']}/lifecycle/reset_factors", **common)
        if what == "support_grant":
            return w.event(0, "user.session.impersonation.grant", None,
                           "Enable impersonation grant", user, ip, place, ua, net, "SUCCESS",
                           None, target=[user_target(user)], uri="/api/v1/org/privacy/oktaSupport/grant",
                           **common)
    raise ValueError(kind)


def generate(n_events, seed, start, out):
    rng = random.Random(seed)
    n_users = max(40, min(5000, n_events // 80))
    org = Org(rng, n_users)
    start_ms = calendar.timegm(time.strptime(start, "%Y-%m-%dT%H:%M:%SZ")) * 1000
    # About four events a second of event time: 200k events make a 14-hour day.
    span_ms = max(15 * 60 * 1000, n_events * 250)
    planner = Planner(rng, org, start_ms, span_ms)
    rounds = max(1, n_events // 40000)
    episode_events = 0
    counts = {"spray": 0, "brute": 0, "push": 0, "takeover": 0, "theft": 0}
    if n_events >= 400:
        for i in range(rounds):
            episode_events += planner.spray()
            episode_events += planner.brute(org.admin if i % 2 == 0 else rng.choice(org.users))
            episode_events += planner.push()
            episode_events += planner.takeover()
            episode_events += planner.theft()
            for key in counts:
                counts[key] += 1
    planner.background(max(0, n_events - episode_events))
    plan = planner.plan
    plan.sort(key=lambda item: (item[0], item[1]))
    writer = Writer(rng, org)
    total = 0
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for ms, _, kind, args in plan:
        event = render(writer, kind, args)
        event["published"] = iso(ms)
        line = dumps(event) + "\n"
        data = line.encode("utf-8")
        total += len(data)
        out.write(data)
    return {"events": len(plan), "bytes": total, "users": len(org.all_users),
            "episodes": counts, "seed": seed,
            "first": iso(plan[0][0]) if plan else None,
            "last": iso(plan[-1][0]) if plan else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200000, help="number of events")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument("--start", default="2026-03-02T07:00:00Z",
                        help="time of the day's first event (RFC 3339, whole seconds, Z)")
    parser.add_argument("--out", default="-", help="output file (default stdout)")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    if args.out == "-":
        summary = generate(args.events, args.seed, args.start, sys.stdout.buffer)
    else:
        with open(args.out, "wb") as out:
            summary = generate(args.events, args.seed, args.start, out)
    print(json.dumps(summary), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
