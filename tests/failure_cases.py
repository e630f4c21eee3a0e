"""The fault-injection cases and their outcomes: one registry feeds the tests' ids and the README table."""

from __future__ import annotations

import re
from pathlib import Path

CASES: dict[int, tuple[str, str]] = {}
README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- failure-table:begin -->", "<!-- failure-table:end -->"


def case(number: int, fault: str, outcome: str):
    """Register a test as the proof of one failure case."""
    CASES[number] = (fault, outcome)

    def mark(fn):
        fn.failure_case = number
        return fn

    return mark


def table() -> str:
    """The README's "Failure behaviour" table, generated from the registry."""
    rows = ["| # | fault | outcome (asserted by `tests/test_faults.py`) |", "|---|---|---|"]
    rows += [f"| {n} | {fault} | {outcome} |" for n, (fault, outcome) in sorted(CASES.items())]
    return "\n".join(rows)


def write_readme() -> None:
    """Rewrite the table between the README markers."""
    text = README.read_text(encoding="utf-8")
    new = re.sub(re.escape(BEGIN) + ".*?" + re.escape(END), f"{BEGIN}\n{table()}\n{END}", text, flags=re.S)
    README.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    import tests.test_faults  # noqa: F401  (registers the cases in tests.failure_cases, not in __main__)
    from tests import failure_cases

    failure_cases.write_readme()
    print(f"wrote {len(failure_cases.CASES)} cases into {README}")
