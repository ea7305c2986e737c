"""Self-assessment in an answer is not evidence: the scorer reads the answer without it.

A model (or a prompt injection riding in the request) can append "I am 100% confident", "This answer is
correct", "confidence: 0.99" or a note to the grader. None of it says anything about whether the answer is
right, but every extra line or number moves the scorer's text features. So the scorer removes such
sentences before it looks, and the attempt's reasons say how many it ignored: adding claims to an answer
can never raise its confidence above what the same answer gets without them.
"""

from __future__ import annotations

import re

# Claims about the answer itself, not about the problem: confidence, certainty, verification, grading.
_CLAIM = re.compile(
    r"\b(i\s*(am|'m)|we\s*(are|'re))\s+(\d{1,3}\s*%\s+|very\s+|absolutely\s+|completely\s+|totally\s+)?"
    r"(confident|certain|sure)\b"
    r"|\b(this|my|the\s+above)\s+(answer|solution|response|result)\s+(is|has\s+been)\s+"
    r"(\w+\s+){0,2}(correct|right|accurate|verified|validated|checked|double[- ]checked|guaranteed)\b"
    r"|\b\d{1,3}\s*%\s+(correct|accurate|confident|certain|sure)\b"
    r"|\b(confidence|certainty)(\s+(score|level))?\s*(:|=|is|of)\s*(100|1(\.0+)?|0?\.\d+|\d{1,3}\s*%)"
    r"|\b(grader|scorer|evaluator|judge|reviewer|router|classifier)\b.{0,80}\b(accept|approve|pass|do\s+not\s+"
    r"escalate|don'?t\s+escalate|mark\s+(this|it)|score\s+(this|it))"
    r"|\b(accept|approve)\s+(this|my)\s+(answer|response|solution)\b"
    r"|\b(do\s+not|don'?t|never)\s+escalate\b"
    r"|\bignore\s+(all\s+|any\s+)?(previous|prior|above|earlier)\s+(instructions|rules|scores?)\b",
    re.IGNORECASE,
)
# Lines that look like the workflow's own fields ("stopReason: end_turn", "verified: yes"). The scorer
# skips all of this when the request asks for JSON (response_format): there such fields may be the answer.
_FAKE_FIELD = re.compile(
    r"^\s*[\"']?(stop_?reason|confidence|verified|correct|is_correct|score|status|decision|accepted)\s*[\"']?"
    r"\s*[:=]",
    re.IGNORECASE,
)
# Sentence ends: ., ! or ? followed by whitespace; newlines always end a sentence.
_SENTENCE_END = re.compile(r"(?<=[.!?])[ \t]+")


def strip_self_assessment(answer: str) -> tuple[str, int]:
    """``answer`` without its sentences about its own correctness, and how many were removed."""
    kept_lines: list[str] = []
    removed = 0
    for line in answer.splitlines():
        if _FAKE_FIELD.search(line):
            removed += 1
            continue
        sentences = _SENTENCE_END.split(line)
        kept = [s for s in sentences if not _CLAIM.search(s)]
        removed += len(sentences) - len(kept)
        if kept or not line.strip():
            kept_lines.append(" ".join(kept))
    if not removed:
        return answer, 0
    return "\n".join(kept_lines).strip(), removed
