#!/usr/bin/env python3
"""Fails when a program needs a shared library it must not link.

    check_links.py BINARY FORBIDDEN_PREFIX...

Reads the program's NEEDED entries with readelf (binutils) and exits 1
naming each one that starts with a forbidden prefix (e.g. libpython: pantherd
never links CPython; librocksdb: pantherctl links only the protos and gRPC).
"""
import subprocess
import sys


def main():
    if len(sys.argv) < 3:
        print("usage: check_links.py BINARY FORBIDDEN_PREFIX...")
        return 2
    binary, forbidden = sys.argv[1], sys.argv[2:]
    out = subprocess.run(["readelf", "-d", binary], check=True, capture_output=True,
                         text=True).stdout
    needed = [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines()
              if "(NEEDED)" in line]
    bad = [n for n in needed if any(n.startswith(p) for p in forbidden)]
    for n in bad:
        print("%s needs %s" % (binary, n))
    if bad:
        return 1
    print("%s: %d shared libraries, none of %s" % (binary, len(needed), ", ".join(forbidden)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
