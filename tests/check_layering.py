#!/usr/bin/env python3
"""Checks the rule for what may depend on what (docs/architecture.md).

    proto <- store <- engine <- server        client -> proto

- proto/ (the API contract and proto/base: status macros, logging, the clock
  type) includes only proto/, so every layer may use it;
- store/ includes only store/ and the generated protos;
- engine/ includes engine/, store/ and the protos;
- server/ includes server/, engine/, store/ and the protos;
- client/ includes client/ and the protos, nothing of the server side;
- the part of engine/ that pantherd links (pantherd_engine) and server/ never
  include a header of pantherd_worker_runtime (the Python side), so pantherd
  never needs CPython; the sources of each library are read from
  engine/CMakeLists.txt.

Tests beside the code (*_test.cc, testdata/, fuzz/) may also include tests/.
Exits 1 naming every include that breaks the rule, 0 otherwise.

    check_layering.py SOURCE_DIR
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)

ALLOWED = {
    "proto": {"proto"},
    "store": {"store", "proto"},
    "engine": {"engine", "store", "proto"},
    "server": {"server", "engine", "store", "proto"},
    "client": {"client", "proto"},
}


def layer_of(include):
    """The layer an include path belongs to ("proto" for generated code)."""
    head = include.split("/", 1)[0]
    if head == "pantherd":  # pantherd/v1/*.pb.h, pantherd/internal/*.pb.h
        return "proto"
    return head


def library_sources(cmake_text, name):
    """The SRCS of pantherd_cc_library(NAME name ...) in a CMakeLists text."""
    match = re.search(r"pantherd_cc_library\(\s*NAME\s+%s\s+SRCS(.*?)DEPS" % re.escape(name),
                      cmake_text, re.S)
    if match is None:
        raise SystemExit("check_layering: no library %s in engine/CMakeLists.txt" % name)
    return match.group(1).split()


def is_test_file(path):
    base = os.path.basename(path)
    return (base.endswith("_test.cc") or base.endswith("_test_util.h") or
            base.endswith("_test_env.h") or "/testdata/" in path or "/fuzz/" in path or
            base == "fake_pantherd.h")


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    with open(os.path.join(root, "engine", "CMakeLists.txt")) as f:
        cmake_text = f.read()
    worker_sources = set(library_sources(cmake_text, "pantherd_worker_runtime"))
    server_side = set(library_sources(cmake_text, "pantherd_engine"))
    worker_headers = {"engine/" + s[:-3] + ".h" for s in worker_sources}
    server_side_files = {"engine/" + s for s in server_side}
    server_side_files |= {"engine/" + s[:-3] + ".h" for s in server_side}

    problems = []
    for layer in ALLOWED:
        for dirpath, _, files in os.walk(os.path.join(root, layer)):
            for name in files:
                if not name.endswith((".cc", ".h")):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                with open(path, encoding="utf-8", errors="replace") as f:
                    includes = INCLUDE.findall(f.read())
                test = is_test_file(rel)
                allowed = ALLOWED[layer] | ({"tests"} if test else set())
                no_python = (layer == "server" or rel in server_side_files) and not test
                for inc in includes:
                    dep = layer_of(inc)
                    if dep in ALLOWED or dep in ("tests", "proto", "bench"):
                        if dep not in allowed:
                            problems.append("%s includes %s (%s may not depend on %s)" %
                                            (rel, inc, layer, dep))
                    if no_python and inc in worker_headers:
                        problems.append("%s includes %s, a header of pantherd_worker_runtime "
                                        "(pantherd must not link CPython)" % (rel, inc))
    for p in sorted(problems):
        print(p)
    if problems:
        print("check_layering: %d include(s) break docs/architecture.md's rule" % len(problems))
        return 1
    print("check_layering: every include follows the rule")
    return 0


if __name__ == "__main__":
    sys.exit(main())
