"""Threat-intel lookups through the vendor's SDK."""

import acme_threatintel_sdk


def is_known_bad(ip_address):
    return acme_threatintel_sdk.lookup(ip_address).malicious
