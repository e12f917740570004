"""Inline suppressions: ``# nosec B602: <reason>`` on the line of the finding it accepts.

A suppression names the bandit test(s) it accepts and says why, after a ``:`` or a dash::

    subprocess.run(argv, check=True)  # nosec B603: argv is a fixed list built in this module
    # nosec B602, B604: the command is a constant; no input reaches it   (on the flagged line)

What is refused (each one a failing finding, and the finding it meant to hide still counts):

* ``# nosec`` naming no test (``code.nosec-without-test-id``): bandit would hide every finding of the line;
* ``# nosec B602`` without a reason of at least :data:`MIN_REASON_CHARS` characters
  (``code.nosec-without-reason``);
* ``# nosec`` followed by something that is not a test id (``code.nosec-malformed``), e.g. a
  test's name instead of its id.

There is no other way to suppress a finding: no configuration file is read, no test is skipped,
and bandit's own ``# nosec`` handling is off (the gate decides). Secrets cannot be suppressed.
"""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

#: The shortest reason accepted ("safe" or "ok" is not a reason).
MIN_REASON_CHARS = 10

_NOSEC = re.compile(r"#\s*nosec\b", re.IGNORECASE)
_FORM = re.compile(
    r"#\s*nosec\b:?\s*(?P<ids>B\d{3}(?:\s*[,\s]\s*B\d{3})*)?\s*(?:(?P<sep>[:\-\u2013\u2014])\s*(?P<reason>.*?))?\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Suppression:
    """One ``# nosec`` comment: where, which tests it names, why; ``problem`` when it is refused."""

    file: str
    line: int
    test_ids: tuple[str, ...]
    reason: str
    problem: str | None = None  # None, "nosec-without-test-id", "nosec-without-reason", "nosec-malformed"

    @property
    def accepted(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"file": self.file, "line": self.line, "test_ids": list(self.test_ids), "reason": self.reason}
        if self.problem:
            out["problem"] = self.problem
        return out


def parse_comment(comment: str, *, file: str = "", line: int = 0) -> Suppression | None:
    """The suppression a comment holds, or ``None`` when it holds no ``# nosec``.

    >>> parse_comment("# nosec B602: the command is a constant string").accepted
    True
    >>> parse_comment("# nosec B602").problem
    'nosec-without-reason'
    >>> parse_comment("# nosec").problem
    'nosec-without-test-id'
    >>> parse_comment("# just a comment") is None
    True
    """
    match = _NOSEC.search(comment)
    if match is None:
        return None
    text = comment[match.start() :]
    form = _FORM.match(text)
    if form is None:
        return Suppression(file, line, (), "", "nosec-malformed")
    ids = tuple(sorted({i.upper() for i in re.findall(r"B\d{3}", form.group("ids") or "", re.IGNORECASE)}))
    reason = (form.group("reason") or "").strip()
    if not ids:
        # no test id at all, or a test named by its name (not taken: ids only)
        rest = text[len(match.group(0)) :].lstrip(":").strip()
        problem = "nosec-malformed" if rest and not form.group("sep") else "nosec-without-test-id"
        return Suppression(file, line, (), reason, problem)
    if len(reason) < MIN_REASON_CHARS or not re.search(r"[A-Za-z]{2}", reason):
        return Suppression(file, line, ids, reason, "nosec-without-reason")
    return Suppression(file, line, ids, reason)


def find_suppressions(source: bytes, *, file: str) -> list[Suppression]:
    """Every ``# nosec`` comment of a Python file (real comments only: not text inside strings)."""
    found: list[Suppression] = []
    try:
        for token in tokenize.tokenize(io.BytesIO(source).readline):
            if token.type == tokenize.COMMENT:
                parsed = parse_comment(token.string, file=file, line=token.start[0])
                if parsed is not None:
                    found.append(parsed)
    except (tokenize.TokenError, SyntaxError):
        pass  # the file parsed as Python already (files.py); a tokenizer quirk only ends the comment list
    return found
