"""Lint test: pyflakes over every .py file of engine/python, run by CTest.

Fails on any pyflakes warning. When Debian's pyflakes3 (package pyflakes3,
installed by .ci/install-deps) is missing, says so and exits 77, which CTest
reports as skipped.
"""

import glob
import os
import shutil
import subprocess
import sys

SKIP = 77


def main():
    pyflakes = shutil.which("pyflakes3")
    if pyflakes is None:
        print("SKIPPED: pyflakes3 is not installed (Debian package pyflakes3; "
              ".ci/install-deps installs it)")
        return SKIP
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "*.py")))
    if not files:
        print("no Python files in %s" % here)
        return 1
    result = subprocess.run([pyflakes] + files, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode != 0 or result.stdout.strip():
        print("pyflakes3 reported problems in %d files" % len(files))
        return 1
    print("pyflakes3: %d files clean" % len(files))
    return 0


if __name__ == "__main__":
    sys.exit(main())
