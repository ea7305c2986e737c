"""Regexes behind a cheap literal pre-check, for the classifier's hot path.

Python's ``re`` tries every alternative of a pattern like ``\\b(prove|derive|show that)\\b`` at every
position of the text: tens of microseconds on a prompt that contains none of them. Every match of such
a pattern contains one of a few literals, and ``literal in text`` runs in C at memory speed; when the
text holds none of them the regex cannot match and is skipped. The results are the regex's own.

The check compares lowercase literals against the lowercased text, which is exact only for ASCII text:
under ``re.IGNORECASE`` some non-ASCII characters match ASCII letters (the Kelvin sign matches ``k``,
the long s matches ``s``). Non-ASCII text therefore always runs the regex.
"""

from __future__ import annotations

import re


class GuardedRegex:
    """``pattern`` plus ``literals``, one of which (lowercase) every match of ``pattern`` contains."""

    def __init__(self, pattern: re.Pattern[str], *literals: str) -> None:
        if not literals or any(literal != literal.lower() or not literal.isascii() for literal in literals):
            raise ValueError("literals must be non-empty, lowercase ASCII")
        self.pattern = pattern
        self.literals = literals

    def may_match(self, text: str, lowered: str) -> bool:
        """False only when ``pattern`` cannot match ``text`` (``lowered`` is ``text.lower()``)."""
        if not text.isascii():
            return True
        return any(literal in lowered for literal in self.literals)

    def search(self, text: str, lowered: str) -> re.Match[str] | None:
        return self.pattern.search(text) if self.may_match(text, lowered) else None

    def count(self, text: str, lowered: str) -> int:
        """The number of non-overlapping matches (``len(pattern.findall(text))``)."""
        return len(self.pattern.findall(text)) if self.may_match(text, lowered) else 0


DIGITS = tuple("0123456789")
