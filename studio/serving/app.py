"""The HTTP service of one recipe (`studio recipe serve`): FastAPI routes over :mod:`studio.recipe_runtime`.

Routes (JSON in and out; errors as OpenAI's ``{"error": {"message", "type", "param", "code"}}``):

- ``POST /v1/embeddings`` — OpenAI's embeddings API: ``{"input": str | [str], "model"?, "encoding_format"?:
  "float" | "base64", "dimensions"?}`` → ``{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
  "model", "usage": {"prompt_tokens", "total_tokens"}, "truncated"}``; the recipe's dense model, normalised as the
  studio encodes. Token-id inputs (what LangChain's ``OpenAIEmbeddings`` sends unless
  ``check_embedding_ctx_length=False``) are refused: the model has its own tokenizer.
- ``POST /rerank`` — text-embeddings-inference's: ``{"query", "texts", "top_n"?, "raw_scores"?, "return_text"?}`` →
  ``[{"index", "score"}]`` best first; the score is ``sigmoid(logit)`` as TEI's, the logit with ``raw_scores``
  (the scale recipe.json's reranker threshold is on; ``relevant`` says whether it is reached).
- ``POST /search`` — ``{"query", "k"}`` → the best k documents held, ranked as the recipe's system ranks them, each
  with its ``relevant`` flag; ``POST /documents`` adds documents (an id held already is replaced).
- ``GET /health`` — the recipe (spec, sha256 of recipe.json), its models, int8 or not, documents held; ``GET
  /metrics`` — requests, errors and p50/p95 milliseconds per route.

Texts longer than a model reads are cut (as the studio cuts them); the response says how many (``truncated``, and
the ``X-Truncated`` header). A request over the limits (:class:`Limits`) gets 413 naming the limit; a malformed
body 422 naming the field. With a token every route but ``/health`` needs ``Authorization: Bearer TOKEN``.
"""

from __future__ import annotations

import hmac
import math
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from studio.recipe_runtime import Index, Runtime, as_base64

ROUTES = ("/v1/embeddings", "/rerank", "/search", "/documents", "/health", "/metrics")
LATENCIES_KEPT = 4096  # per route, for the percentiles


@dataclass(frozen=True)
class Limits:
    """What one request may ask: texts per /v1/embeddings or /rerank call, documents per /documents call, k."""

    batch: int = 256
    documents: int = 10000
    k: int = 1000


class ApiError(Exception):
    """A request the service refuses: HTTP `status`, a message naming the `param` at fault."""

    def __init__(self, status: int, message: str, param: str | None = None, kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.kind = status, message, param, kind


# ------------------------------------------------------------------------------------------------------ bodies

class EmbeddingRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    input: str | list[str] | list[int] | list[list[int]]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1)
    user: str | None = None


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query: str
    texts: list[str]
    top_n: int | None = Field(default=None, ge=1)
    raw_scores: bool = False
    return_text: bool = False


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    query: str = Field(min_length=1)
    k: int = Field(default=10, ge=1)
    return_text: bool = True


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | int
    title: str = ""
    text: str = ""


class DocumentsRequest(BaseModel):
    documents: list[DocumentIn]


# ----------------------------------------------------------------------------------------------------- metrics

class Metrics:
    """Requests, errors and latencies per route (the last :data:`LATENCIES_KEPT` of each)."""

    def __init__(self) -> None:
        self.started = time.time()
        self._lock = threading.Lock()
        self._ms: dict[str, deque] = {}
        self._count: dict[str, int] = {}
        self._errors: dict[str, int] = {}

    def record(self, route: str, ms: float, status: int) -> None:
        with self._lock:
            self._ms.setdefault(route, deque(maxlen=LATENCIES_KEPT)).append(ms)
            self._count[route] = self._count.get(route, 0) + 1
            self._errors[route] = self._errors.get(route, 0) + (status >= 400)

    def snapshot(self) -> dict:
        """``{"uptime_s", "routes": {route: {"requests", "errors", "p50_ms", "p95_ms"}}}``."""
        with self._lock:
            routes = {route: {"requests": self._count[route], "errors": self._errors[route],
                              "p50_ms": percentile(list(ms), 50), "p95_ms": percentile(list(ms), 95)}
                      for route, ms in sorted(self._ms.items())}
        return {"uptime_s": round(time.time() - self.started, 1), "routes": routes}


def percentile(values: list[float], q: float) -> float | None:
    """The `q`-th percentile of `values` (nearest rank), rounded to 0.01 ms; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(q / 100 * len(ordered)), 1)
    return round(ordered[rank - 1], 2)


# ------------------------------------------------------------------------------------------------------ the app

def model_label(model: str | None) -> str | None:
    """How the service names a model: a folder by its name, a hub id as given."""
    if model is None:
        return None
    path = Path(model)
    return path.name if path.is_absolute() else model


def create_app(runtime: Runtime, index: Index | None = None, *, token: str | None = None,
               limits: Limits = Limits()) -> FastAPI:
    """The service over `runtime` holding `index`'s documents (none when None); `token` required on every route
    but ``/health`` when given."""
    app = FastAPI(title=f"Relevance Studio recipe: {runtime.spec}", docs_url=None, redoc_url=None)
    index = index if index is not None else runtime.index([])
    metrics = Metrics()
    documents_lock = threading.Lock()
    app.state.runtime, app.state.index, app.state.metrics = runtime, index, metrics

    def authorised(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise ApiError(401, "this service needs 'Authorization: Bearer TOKEN' (the --token it was started with)",
                           kind="authentication_error")

    @app.middleware("http")
    async def timed(request: Request, call_next):
        t0 = time.perf_counter()
        response = await call_next(request)
        route = request.url.path if request.url.path in ROUTES else "other"
        metrics.record(route, (time.perf_counter() - t0) * 1000, response.status_code)
        return response

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(exc.status, exc.message, exc.param, exc.kind, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_body(_request: Request, exc: RequestValidationError):
        message, param = validation_message(exc.errors())
        return error_response(422, message, param)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail), None,
                              "not_found_error" if exc.status_code == 404 else "invalid_request_error")

    @app.get("/health")
    def health() -> dict:
        return health_info(runtime, index, limits)

    @app.get("/metrics", dependencies=[Depends(authorised)])
    def metrics_route() -> dict:
        return metrics.snapshot()

    @app.post("/v1/embeddings", dependencies=[Depends(authorised)])
    def embeddings(body: EmbeddingRequest) -> JSONResponse:
        if runtime.dense_model is None:
            raise ApiError(404, f"the recipe {runtime.spec} has no dense model to embed with", "model",
                           "not_found_error")
        texts = [body.input] if isinstance(body.input, str) else list(body.input)
        if any(not isinstance(text, str) for text in texts):
            raise ApiError(422, "input: token ids are not accepted, send text (the model has its own tokenizer; "
                                "with LangChain's OpenAIEmbeddings set check_embedding_ctx_length=False)", "input")
        if not texts:
            raise ApiError(422, "input: give at least one text", "input")
        check_batch(len(texts), limits.batch, "input")
        vectors = runtime.embed(texts)
        if body.dimensions is not None and body.dimensions != vectors.shape[1]:
            raise ApiError(422, f"dimensions: this model gives {vectors.shape[1]}-dimensional embeddings, "
                                f"not {body.dimensions}", "dimensions")
        usage = runtime.embed_usage(texts)
        encode = as_base64 if body.encoding_format == "base64" else (lambda v: v.tolist())
        data = [{"object": "embedding", "index": i, "embedding": encode(vector)} for i, vector in enumerate(vectors)]
        content = {"object": "list", "data": data, "model": model_label(runtime.dense_model),
                   "usage": {"prompt_tokens": usage.tokens, "total_tokens": usage.tokens},
                   "truncated": usage.truncated}
        return JSONResponse(content, headers=truncated_header(usage.truncated, usage.max_length))

    @app.post("/rerank", dependencies=[Depends(authorised)])
    def rerank(body: RerankRequest) -> JSONResponse:
        if runtime.reranker_model is None:
            raise ApiError(404, f"the recipe {runtime.spec} has no reranker: export one whose spec ends in "
                                ">RERANKER to serve /rerank", None, "not_found_error")
        if not body.texts:
            raise ApiError(422, "texts: give at least one text", "texts")
        check_batch(len(body.texts), limits.batch, "texts")
        logits = runtime.rerank(body.query, body.texts)
        usage = runtime.rerank_usage(body.query, body.texts)
        threshold = reranker_threshold(runtime)
        order = sorted(range(len(logits)), key=lambda i: (-logits[i], i))[:body.top_n or len(logits)]
        results = []
        for i in order:
            item = {"index": i, "score": logits[i] if body.raw_scores else sigmoid(logits[i])}
            if threshold is not None:
                item["relevant"] = logits[i] >= threshold
            if body.return_text:
                item["text"] = body.texts[i]
            results.append(item)
        return JSONResponse(results, headers=truncated_header(usage.truncated, usage.max_length))

    @app.post("/search", dependencies=[Depends(authorised)])
    def search(body: SearchRequest) -> dict:
        if body.k > limits.k:
            raise ApiError(413, f"k: at most {limits.k} results per request, asked for {body.k}", "k")
        with documents_lock:
            if not len(index):
                raise ApiError(409, "the service holds no documents: start it with --documents FILE or POST them "
                                    "to /documents", "query")
            hits = index.search(body.query, body.k)
            held = len(index)
            records = [index.documents[h["index"]] for h in hits]
        results = []
        for hit, doc in zip(hits, records):
            item = {"rank": hit["rank"], "id": hit["id"], "score": hit["score"], "relevant": hit["relevant"],
                    "title": doc.get("title", "")}
            if body.return_text:
                item["text"] = doc.get("text", "")
            results.append(item)
        return {"object": "search", "spec": runtime.spec, "query": body.query, "results": results,
                "documents": held, "threshold": threshold_info(runtime)}

    @app.post("/documents", dependencies=[Depends(authorised)])
    def add_documents(body: DocumentsRequest) -> dict:
        check_batch(len(body.documents), limits.documents, "documents")
        documents = []
        for i, doc in enumerate(body.documents):
            key = str(doc.id).strip()
            if not key:
                raise ApiError(422, f"documents[{i}].id: the id is empty", f"documents[{i}].id")
            if not (doc.title.strip() or doc.text.strip()):
                raise ApiError(422, f"documents[{i}].text: a document needs a title or a text",
                               f"documents[{i}].text")
            documents.append({"id": key, "title": doc.title, "text": doc.text})
        with documents_lock:
            try:
                added, replaced = index.add(documents)
            except ValueError as exc:
                raise ApiError(422, f"documents: {exc}", "documents") from exc
            held = len(index)
        return {"added": added, "replaced": replaced, "documents": held}

    return app


# ---------------------------------------------------------------------------------------------------- helpers

def error_response(status: int, message: str, param: str | None, kind: str = "invalid_request_error",
                   headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": param, "code": status}},
                        status_code=status, headers=dict(headers or {}))


def validation_message(errors: list[dict]) -> tuple[str, str | None]:
    """The first of pydantic's errors as one line naming the field (``field 'input': Field required``)."""
    if not errors:
        return "the request body is not valid", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the body is not valid JSON: {first.get('ctx', {}).get('error', first.get('msg'))}", None
    loc = [str(part) for part in first.get("loc", ()) if part != "body"]
    # A union (str | list[str]) reports each member's path: keep the field, drop the member's type name.
    field = ".".join(part for part in loc if not part.startswith(("list[", "str", "int")) and part != "function-after")
    if not field:
        return f"the request body: {first.get('msg')} (send a JSON object)", None
    return f"field '{field}': {first.get('msg')}", field


def check_batch(n: int, limit: int, param: str) -> None:
    if n > limit:
        raise ApiError(413, f"{param}: {n} items, at most {limit} per request (send them in batches)", param)


def truncated_header(truncated: int, max_length: int) -> dict[str, str]:
    return {"X-Truncated": str(truncated), "X-Max-Tokens": str(max_length)}


def sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def reranker_threshold(runtime: Runtime) -> float | None:
    """The calibrated threshold on the reranker's logits, when the recipe has one."""
    entry = runtime.data.get("threshold") or {}
    return runtime.threshold if entry.get("kind") == "reranker" else None


def threshold_info(runtime: Runtime) -> dict | None:
    if runtime.threshold is None:
        return None
    return {"value": runtime.threshold, "applies_to": runtime.threshold_applies_to}


def health_info(runtime: Runtime, index: Index, limits: Limits) -> dict:
    """What ``GET /health`` answers."""
    data = runtime.data
    dense = [model_label(s["model"]) for s in data["first_stage"] if s["kind"] == "dense"]
    return {"status": "ok", "spec": runtime.spec, "recipe": runtime.folder.name,  # no path: /health is public
            "recipe_sha256": runtime.fingerprint,
            "models": {"dense": dense, "bm25": any(s["kind"] == "bm25" for s in data["first_stage"]),
                       "reranker": model_label(runtime.reranker_model)},
            "fusion": (data.get("fusion") or {}).get("method"), "int8": runtime.int8,
            "documents": len(index), "threshold": threshold_info(runtime), "limits": asdict(limits)}
