"""Pure content generators behind the Americano stand-ins: objectives, rubric scores,
confidence calibration and OpenAI-compatible chat completions.

No I/O: the handlers in `americano` call these, and tests can call them directly.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z][a-z\-]+", text.lower())


def _unit(*parts: str) -> float:
    """A stable pseudo-random number in [0, 1) derived from the parts."""
    digest = hashlib.sha256("|".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def extract_objectives(text: str) -> list[dict[str, str]]:
    """Learning objectives from a passage, one per substantial sentence (at most six)."""
    objectives = []
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        sentence = sentence.strip().rstrip(".!?")
        words = len(sentence.split())
        if words < 3:
            continue
        complexity = "BASIC" if words < 10 else "INTERMEDIATE" if words < 20 else "ADVANCED"
        verb = {"BASIC": "Identify", "INTERMEDIATE": "Explain", "ADVANCED": "Analyze"}[complexity]
        objectives.append({"objective": f"{verb}: {sentence}", "complexity": complexity})
    if not objectives:
        objectives = [
            {"objective": "Describe the key concepts in the material", "complexity": "BASIC"}
        ]
    return objectives[:6]


def score_answer(answer: str, objective: str) -> dict[str, Any]:
    """Rubric scores (0-100) for an explanation of an objective, with strengths and gaps."""
    words, wanted = _tokens(answer), set(_tokens(objective))
    overlap = len(set(words) & wanted) / max(1, len(wanted))
    length = min(1.0, len(words) / 40)
    scores = {
        "terminology_score": 40 + 55 * overlap,
        "relationships_score": 30 + 50 * length + 15 * overlap,
        "application_score": 25 + 45 * length + 20 * overlap,
        "clarity_score": (45 + 45 * length) if len(words) >= 5 else 25,
    }
    scores = {k: round(min(100.0, v), 1) for k, v in scores.items()}
    names = {k: k.removesuffix("_score") for k in scores}
    strengths = [f"Good {names[k]}" for k, v in scores.items() if v >= 70]
    gaps = [f"Strengthen {names[k]}" for k, v in scores.items() if v < 60]
    return scores | {"strengths": strengths or ["Attempted the explanation"], "gaps": gaps}


def calibrate(confidence_level: int, overall_score: float) -> tuple[float, str]:
    """Confidence calibrator: (confidence - score) and a note for the learner."""
    delta = round((confidence_level - 1) * 25 - overall_score, 1)
    if delta > 15:
        return (
            delta,
            "Overconfident: your confidence is higher than your demonstrated understanding.",
        )
    if delta < -15:
        return delta, "Underconfident: you understand this better than you think."
    return delta, "Well calibrated: your confidence matches your understanding."


def chat_completion(messages: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """An OpenAI-compatible completion whose content is JSON (evaluation or objectives)."""
    texts = [
        m["content"]
        if isinstance(m.get("content"), str)
        else " ".join(p.get("text", "") for p in m.get("content") or [] if isinstance(p, dict))
        for m in messages
    ]
    user = next(
        (
            t
            for m, t in zip(reversed(messages), reversed(texts), strict=True)
            if m.get("role") == "user"
        ),
        texts[-1],
    )
    system = " ".join(t for m, t in zip(messages, texts, strict=True) if m.get("role") == "system")
    if "evaluate" in (system or " ".join(texts)).lower():
        answer, _, objective = user.partition("\nObjective:")
        content = score_answer(answer.removeprefix("Answer:"), objective or user)
    else:
        content = {"objectives": extract_objectives(user)}
    text = json.dumps(content)
    prompt_tokens = sum(len(t.split()) for t in texts)
    return {
        "id": f"chatcmpl-{hashlib.sha1(text.encode()).hexdigest()[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }
