"""CI's flake check: the property-based tests of the default suite, run twice, must draw the same examples.

Under the default hypothesis profile (`ci`: derandomized, no example database) the same commit draws the
same examples every time. A test that draws unseeded randomness shows here as two runs whose example counts
or outcomes differ, on the commit that added it.
"""
import re
import subprocess
import sys

COMMAND = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "fuzz and not slow",
           "--hypothesis-show-statistics"]
COUNTS = re.compile(r"(\d+) passing examples?, (\d+) failing examples?, (\d+) invalid examples?")


def statistics() -> tuple[int, dict[str, list[tuple[int, ...]]]]:
    proc = subprocess.run(COMMAND, capture_output=True, text=True)
    per_test, test = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith("tests/") and line.rstrip().endswith(":"):
            test = line.rstrip()[:-1]
        elif test and (match := COUNTS.search(line)):
            per_test.setdefault(test, []).append(tuple(map(int, match.groups())))
    return proc.returncode, per_test


def main() -> int:
    (code_a, first), (code_b, second) = statistics(), statistics()
    for test in sorted(first):
        print(f"{test}: {first[test]}")
    if not first:
        print("flake check: no property-based test reported statistics", file=sys.stderr)
        return 1
    if (code_a, first) != (code_b, second):
        changed = sorted(t for t in first.keys() | second.keys() if first.get(t) != second.get(t))
        print(f"flake check: two runs differ (exit {code_a} and {code_b}) in: {', '.join(changed) or 'outcome'}",
              file=sys.stderr)
        return 1
    print(f"flake check: {len(first)} property-based tests drew the same examples twice (exit {code_a})")
    return code_a


if __name__ == "__main__":
    sys.exit(main())
