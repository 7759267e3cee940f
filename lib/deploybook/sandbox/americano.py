"""The Americano contract (see DESIGN.md and CONTRACT.md): one handler per route of the
api, web, chatmock and ocr services, and `ROUTE_TABLE` mapping each service's routes to
them. `services.ServiceInstance` routes requests here after applying any injected fault.

Handlers validate requests the way FastAPI does (422 with `detail`), shape responses from
the pure generators in `americano_content`, and reach the database or chatmock through
`americano_backends`.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from .americano_backends import CHAT_MODEL, DatabaseUnavailable, _ask_chatmock, _in_thread, _query
from .americano_content import _tokens, _unit, calibrate, chat_completion
from .receivers import Request, Response, json_response

if TYPE_CHECKING:
    from .services import Handler, ServiceInstance

# --- request validation (FastAPI-style 422s) ------------------------------------------


class EvaluateRequest(BaseModel):
    prompt_id: str
    user_answer: str
    confidence_level: int = Field(ge=1, le=5)
    objective_text: str


class QuestionRequest(BaseModel):
    session_id: str
    objective_id: str


def _unprocessable(errors: list[dict[str, Any]]) -> Response:
    return json_response({"detail": errors}, 422)


def _parse(model: type[BaseModel], req: Request) -> BaseModel | Response:
    try:
        data = req.json()
    except (ValueError, UnicodeDecodeError) as exc:
        err = {"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}
        return _unprocessable([err | {"ctx": {"error": str(exc)}}])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        for err in errors:
            err["loc"] = ["body", *err["loc"]]
        return _unprocessable(json.loads(json.dumps(errors, default=str)))


def _missing_query(name: str) -> Response:
    return _unprocessable(
        [{"type": "missing", "loc": ["query", name], "msg": "Field required", "input": None}]
    )


# --- handlers ---------------------------------------------------------------------------


async def api_health(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    title = "americano-analytics" if req.path.startswith("/analytics") else svc.title
    return json_response(
        {"status": "healthy", "service": title, "version": svc.version, "environment": svc.env}
    )


async def question_next(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    body = _parse(QuestionRequest, req)
    if isinstance(body, Response):
        return body
    answered = svc.sessions[body.session_id] = svc.sessions.get(body.session_id, 0) + 1
    u = _unit(body.session_id, body.objective_id, str(answered))
    se = round(max(0.25, 1.0 / (1 + 0.35 * answered)), 3)
    qid = hashlib.sha1(f"{body.objective_id}/{answered}".encode()).hexdigest()[:10]
    question = {
        "question_id": f"q-{qid}",
        "difficulty": round(-2.5 + 5 * u, 3),
        "discrimination": round(0.6 + 1.6 * _unit(str(u)), 3),
        "guessing": 0.2,
        "text": f"Question {answered} on {body.objective_id}: explain the key mechanism.",
    }
    theta = round(-1.5 + 3 * _unit(body.session_id, str(answered)), 3)
    irt = {"theta": theta, "standard_error": se, "information": round(1 / se**2, 3)}
    return json_response({"question": question, "irt_metrics": irt, "session_id": body.session_id})


async def evaluate(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    body = _parse(EvaluateRequest, req)
    if isinstance(body, Response):
        return body
    system = "Evaluate the learner's explanation of the objective; answer rubric scores as JSON."
    result, error = await _ask_chatmock(
        svc, system, f"Answer: {body.user_answer}\nObjective: {body.objective_text}"
    )
    keys = ("terminology_score", "relationships_score", "application_score", "clarity_score")
    if error is None and not (isinstance(result, dict) and all(k in result for k in keys)):
        error = "LLM service (chatmock) returned JSON without the rubric scores"
    if error:
        return json_response({"detail": error}, 502)
    weights = dict(zip(keys, (0.2, 0.3, 0.3, 0.2), strict=True))
    overall = round(sum(float(result[k]) * w for k, w in weights.items()), 1)
    delta, note = calibrate(body.confidence_level, overall)
    scores = {k: result[k] for k in keys}
    extra = {"strengths": result.get("strengths", []), "gaps": result.get("gaps", [])}
    return json_response(
        {
            "overall_score": overall,
            **scores,
            **extra,
            "calibration_delta": delta,
            "calibration_note": note,
        }
    )


async def scenario_metrics(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    date_range = req.query.get("dateRange", "7days")
    days = {"7days": 7, "30days": 30, "90days": 90}.get(date_range)
    if days is None:
        msg = "Input should be '7days', '30days' or '90days'"
        return _unprocessable(
            [{"type": "enum", "loc": ["query", "dateRange"], "msg": msg, "input": date_range}]
        )
    u = _unit(svc.env, date_range)
    return json_response(
        {
            "date_range": date_range,
            "total_attempts": 12 * days + int(40 * u),
            "completion_rate": round(0.7 + 0.2 * u, 3),
            "average_score": round(68 + 12 * u, 1),
            "by_type": [
                {"type": t, "attempts": 3 * days + i}
                for i, t in enumerate(("DIAGNOSIS", "MANAGEMENT"))
            ],
        }
    )


async def scenario(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    sid = p["scenario_id"]
    return json_response(
        {
            "scenario_id": sid,
            "title": f"Clinical scenario {sid}",
            "type": "DIAGNOSIS",
            "difficulty": "INTERMEDIATE",
            "case_text": "A 54-year-old presents with exertional chest pain relieved by rest.",
            "questions": [{"id": f"{sid}-1", "prompt": "What is the most likely diagnosis?"}],
        }
    )


async def dashboard(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    user_id = req.query.get("user_id")
    if not user_id:
        return _missing_query("user_id")
    try:
        rows = await _in_thread(
            _query,
            svc.database_url,
            ["select count(*) from concepts", "select count(*) from content_chunks"],
        )
    except DatabaseUnavailable as exc:
        return json_response({"detail": str(exc)}, 503)
    u = _unit(user_id)
    return json_response(
        {
            "user_id": user_id,
            "overall_score": round(60 + 30 * u, 1),
            "total_validations": int(rows[0][0]) if rows else 0,
            "calibration": {
                "mean_absolute_delta": round(8 + 10 * u, 1),
                "overconfident_rate": round(0.3 * u, 3),
            },
            "trends": [
                {"day": d, "score": round(60 + 30 * _unit(user_id, str(d)), 1)}
                for d in range(-6, 1)
            ],
            "patterns": [
                {
                    "pattern": "strong terminology, weaker application",
                    "frequency": round(0.4 + 0.3 * u, 3),
                }
            ],
        }
    )


async def web_health(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    return json_response({"status": "healthy", "version": svc.version, "environment": svc.env})


def _web_error(message: str, status: int) -> Response:
    return json_response({"error": message, "detail": message}, status)


async def content_search(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    q = req.query.get("q", "").strip()
    if not q:
        return _web_error("query parameter q is required", 400)
    try:
        rows = await _in_thread(
            _query, svc.database_url, ["select id::text, content from content_chunks limit 50"]
        )
    except DatabaseUnavailable as exc:
        return _web_error(str(exc), 503)
    terms = set(_tokens(q))
    results = []
    for rank, (rid, content) in enumerate(rows):
        content = content or ""
        overlap = len(terms & set(_tokens(content))) / max(1, len(terms))
        score = round(min(0.99, 0.55 + 0.4 * overlap - 0.005 * rank), 4)
        title = " ".join(content.split()[:6]) or f"chunk {rid}"
        results.append({"id": str(rid), "title": title, "score": score, "snippet": content[:200]})
    results.sort(key=lambda r: r["score"], reverse=True)
    return json_response({"query": q, "results": results[:5], "total": min(5, len(results))})


async def extract(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    try:
        text = req.json().get("text")
    except (ValueError, AttributeError, UnicodeDecodeError):
        text = None
    if not isinstance(text, str) or not text.strip():
        return _web_error('body must be JSON {"text": "..."} with non-empty text', 400)
    system = "Extract the learning objectives. Answer JSON {objectives:[{objective, complexity}]}."
    result, error = await _ask_chatmock(svc, system, text)
    if error is None and not (
        isinstance(result, dict) and isinstance(result.get("objectives"), list)
    ):
        error = "LLM service (chatmock) returned JSON without objectives"
    if error:
        return _web_error(error, 502)
    return json_response({"objectives": result["objectives"]})


async def calibration_metrics(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    u = _unit(svc.env, "calibration")
    return json_response(
        {
            "calibration_score": round(0.72 + 0.15 * u, 3),
            "mean_absolute_delta": round(9 + 6 * u, 1),
            "overconfident_rate": round(0.18 + 0.1 * u, 3),
            "underconfident_rate": round(0.12 + 0.1 * u, 3),
            "samples": 240 + int(100 * u),
        }
    )


async def chat_health(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    return json_response({"status": "healthy", "service": svc.title, "version": svc.version})


async def models(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    data = [
        {"id": m, "object": "model", "created": 1715367049, "owned_by": "chatmock"}
        for m in (CHAT_MODEL, "gpt-4o")
    ]
    return json_response({"object": "list", "data": data})


async def completions(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    try:
        body = req.json()
        messages = body["messages"]
        ok = isinstance(messages, list) and messages and all(isinstance(m, dict) for m in messages)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        ok = False
    if not ok:
        err = {
            "message": "'messages' must be a non-empty array",
            "type": "invalid_request_error",
            "param": "messages",
            "code": None,
        }
        return json_response({"error": err}, 400)
    return json_response(chat_completion(messages, str(body.get("model") or CHAT_MODEL)))


async def ocr_health(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    return json_response(
        {"status": "healthy", "ocr_engine": "paddleocr", "ready": True, "version": svc.version}
    )


async def ocr_extract(svc: ServiceInstance, req: Request, p: dict[str, str]) -> Response:
    if not req.body:
        return json_response(
            {"detail": "no image supplied (JSON image_base64/image_url or raw image bytes)"}, 422
        )
    text = "Myocardial infarction results from prolonged ischemia of cardiac muscle."
    return json_response(
        {
            "text": text,
            "confidence": 0.96,
            "engine": "paddleocr",
            "pages": 1,
            "bytes": len(req.body),
        }
    )


ROUTE_TABLE: dict[str, list[tuple[str, str, Handler]]] = {
    "api": [
        ("GET", "/health", api_health),
        ("GET", "/analytics/health", api_health),
        ("POST", "/adaptive/question/next", question_next),
        ("POST", "/validation/evaluate", evaluate),
        ("GET", "/validation/scenarios/metrics", scenario_metrics),
        ("GET", "/validation/scenarios/{scenario_id}", scenario),
        ("GET", "/analytics/understanding/dashboard", dashboard),
    ],
    "web": [
        ("GET", "/api/health", web_health),
        ("GET", "/api/content/search", content_search),
        ("POST", "/api/ai/extract/objectives", extract),
        ("GET", "/api/calibration/metrics", calibration_metrics),
    ],
    "chatmock": [
        ("GET", "/health", chat_health),
        ("GET", "/v1/models", models),
        ("POST", "/v1/chat/completions", completions),
    ],
    "ocr": [("GET", "/health", ocr_health), ("POST", "/extract", ocr_extract)],
}
