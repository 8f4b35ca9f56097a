"""Type-check fastbmm's stubs as a user's mypy sees them.

    python tests/typing/check_stubs.py              # the stubs in this source tree
    python tests/typing/check_stubs.py --installed  # the installed package's (a wheel)

``usage_ok.py`` must pass ``mypy --strict``; ``usage_misspelled.py`` must fail,
with the error that names the misspelled keyword (``outt=`` for ``out=``), and
with no error on any other line. Exit status 0 when both hold. Needs mypy.

Where fastbmm is found: by default mypy runs from the repository root, so it
reads ./fastbmm/*.pyi (an editable install's import hook is invisible to mypy);
``--installed`` runs it from an empty directory, so it reads the installed
package, through its py.typed marker.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
EXPECTED = (
    'usage_misspelled.py:11: error: Unexpected keyword argument "outt" for overloaded '
    'function "bmm"; did you mean "out"?'
)


def run_mypy(name, cwd, cache):
    """mypy --strict on tests/typing/`name`, from `cwd`: (exit status, output)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", cache,
         "--no-color-output", os.path.join(HERE, name)],
        cwd=cwd, capture_output=True, text=True,
    )
    return result.returncode, result.stdout + result.stderr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installed", action="store_true",
                        help="check the installed fastbmm, not this source tree's stubs")
    args = parser.parse_args(argv)
    # one cache for both runs (numpy's stubs are read once); none left behind
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as cache:
        cwd = empty if args.installed else REPO
        status, output = run_mypy("usage_ok.py", cwd, cache)
        print(output, end="")
        if status != 0:
            print("check_stubs: usage_ok.py must pass mypy --strict", file=sys.stderr)
            return 1
        status, output = run_mypy("usage_misspelled.py", cwd, cache)
        print(output, end="")
        errors = [line for line in output.splitlines() if re.search(r":\d+: error:", line)]
        other_lines = [line for line in errors if ":11: error:" not in line]
        if status != 1 or not any(EXPECTED in line for line in errors) or other_lines:
            print(f"check_stubs: usage_misspelled.py must fail with only\n  {EXPECTED}",
                  file=sys.stderr)
            return 1
    print("check_stubs: OK (usage_ok.py passes; usage_misspelled.py fails on outt=)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
