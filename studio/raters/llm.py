"""``llm``: a chat model behind any OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, Ollama, a llama.cpp
server, a hosted one) asked with an UMBRELA-style prompt.

UMBRELA (Upadhyay, Pradeep, Thakur, Craswell, Lin 2024, "UMBRELA: UMbrela is the (Open-Source Reproduction of
the) Bing RELevance Assessor", arXiv:2406.06519) reproduces Thomas et al.'s Bing prompt: the model rates a passage
0–3 (nothing to do with the query / related but no answer / an answer, unclear or buried / dedicated to the query
with the exact answer) and ends with ``##final score: N``. :data:`PROMPT` asks the same in the studio's words. Its
0–3 maps to the studio's scale as 0→0, 1→1, 2→2, 3→2 (:data:`MAPPING`): UMBRELA's 2 and 3 both hold an answer,
which is what the studio's "relevant" means; its 1 (on topic, no answer) is the studio's "partially relevant".

The prompt, the mapping and the generation settings are stored with the rater (``model_raters.settings``), the
raw answer with each judgment (``judgments.answer``). An answer with no readable score is not guessed: it gets no
label, is counted and kept with the rater (``settings["unparsable"]``), and is asked again on the next run. Only
the standard library and httpx (which Gradio brings) are used; the API key comes from ``STUDIO_LLM_KEY`` and is
never stored.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from urllib.parse import urlsplit

import httpx

from studio.errors import StudioError
from studio.raters.base import Inputs, Judgment, ModelRater, Verdicts

PROMPT = (
    "You judge how relevant a passage is to a search query, on an integer scale from 0 to 3:\n"
    "0 = the passage has nothing to do with the query;\n"
    "1 = the passage is related to the query's topic but does not answer it;\n"
    "2 = the passage contains an answer to the query, but it is unclear or buried in other information;\n"
    "3 = the passage is devoted to the query and contains the exact answer.\n"
    "Give 1 when the passage touches the topic only in part, 2 when it says something important about the whole "
    "topic among other things, 3 when it is only and entirely about it; otherwise 0.\n\n"
    "Query: {query}\n"
    "Passage: {passage}\n\n"
    "Think about the intent behind the query, how well the passage meets it and how trustworthy the passage is, "
    "then decide on one integer score. Do not explain your reasoning. Answer in exactly this format:\n"
    "##final score: <score>"
)
MAPPING = {0: 0, 1: 1, 2: 2, 3: 2}
MAX_PASSAGE_CHARS = 2000  # a longer document is cut here (about 500 tokens; stored with the rater)
MAX_TOKENS = 32
TIMEOUT = 60.0  # seconds per request
RETRIES = 2  # after a timeout, a connection error, 429 or 5xx; then the run stops (what was saved stays)
BATCH = 16  # judgments saved per transaction while an LLM run goes on

_FINAL = re.compile(r"final\s*score\s*[:：=]?\s*\**\s*([0-3])(?!\.?[0-9])", re.IGNORECASE)
_ALONE = re.compile(r"^\s*\**\s*([0-3])\s*\**\s*\.?\s*$")


def parse_score(answer: str | None) -> int | None:
    """The 0–3 score in an answer: the last ``final score: N``, or an answer that is a lone digit; None otherwise
    (no other number in the text is taken for a score)."""
    if not answer:
        return None
    found = _FINAL.findall(answer)
    if found:
        return int(found[-1])
    alone = _ALONE.match(answer)
    return int(alone.group(1)) if alone else None


def chat_base(url: str) -> str:
    """The API root (``…/v1``) of `url`: a server root, its ``/v1`` or the full ``/v1/chat/completions`` URL.

    Raises:
        StudioError: ``llm_bad_url`` for anything but an http(s) URL with a host.
    """
    text = (url or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise StudioError("llm_bad_url", url=url)
    for tail in ("/chat/completions", "/completions"):
        if text.endswith(tail):
            text = text[: -len(tail)]
    return text if text.endswith("/v1") else text + "/v1"


class ChatClient:
    """A minimal OpenAI-compatible chat client: one user message, temperature 0, with timeouts and retries."""

    def __init__(self, url: str, model: str | None = None, *, api_key: str | None = None, timeout: float = TIMEOUT,
                 retries: int = RETRIES, backoff: float = 1.0, max_tokens: int = MAX_TOKENS) -> None:
        self.base = chat_base(url)
        self.url = url
        self.model = model
        self.retries = retries
        self.backoff = backoff
        self.max_tokens = max_tokens
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(timeout=timeout, headers=headers)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs) -> httpx.Response:
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                response = self.http.request(method, self.base + path, **kwargs)
            except httpx.HTTPError as exc:  # timeouts, refused connections, broken reads
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                last = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise StudioError("llm_refused", url=self.url, status=response.status_code,
                                  detail=response.text[:300])
            return response
        raise StudioError("llm_unreachable", url=self.url, tries=self.retries + 1, detail=last[:300])

    def model_id(self) -> str:
        """The model to ask: the one given, else the first the endpoint lists (``GET /v1/models``)."""
        if self.model:
            return self.model
        try:
            listed = self._send("GET", "/models").json().get("data") or []
            self.model = str(listed[0]["id"])
        except (StudioError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise StudioError("llm_model_needed", url=self.url) from None
        return self.model

    def ask(self, prompt: str) -> str:
        """The assistant's answer to `prompt` as text (the raw response body when it has no message content)."""
        body = {"model": self.model_id(), "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                "max_tokens": self.max_tokens, "stream": False}
        response = self._send("POST", "/chat/completions", json=body)
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            return response.text[:2000]
        return content if isinstance(content, str) else str(content)


def prompt_for(query: str, document: str) -> str:
    """:data:`PROMPT` for one pair (the document cut at :data:`MAX_PASSAGE_CHARS`)."""
    return PROMPT.replace("{query}", query.strip()).replace("{passage}", document.strip()[:MAX_PASSAGE_CHARS])


class LLM(ModelRater):
    """An OpenAI-compatible chat endpoint rating each pair 0–3 with :data:`PROMPT`; nothing is fitted on gold."""

    name = "llm"
    needs = frozenset({"endpoint"})

    def rater_name(self, spec: str, llm_model: str | None = None) -> str:
        return f"{self.name}:{llm_model or 'default'}@{urlsplit(chat_base(spec)).netloc}"

    def settings(self, url: str, model: str) -> dict:
        """What is stored with the rater: the endpoint, the model, the prompt and how an answer becomes a label."""
        return {"url": url, "model": model, "prompt": PROMPT, "mapping": {str(k): v for k, v in MAPPING.items()},
                "temperature": 0, "max_tokens": MAX_TOKENS, "max_passage_chars": MAX_PASSAGE_CHARS}

    def same_setup(self, previous: dict, url: str, model: str) -> bool:
        """Whether judgments stored under `previous` settings were made the way this run would make them (then
        an interrupted run resumes instead of asking again)."""
        current = self.settings(url, model)
        return all(previous.get(k) == current[k] for k in ("model", "prompt", "mapping", "max_passage_chars"))

    def prepare(self, inputs: Inputs) -> Inputs:
        client = self.client(inputs)
        try:
            return replace(inputs, llm_model=client.model_id())
        finally:
            client.close()

    def resumes(self, previous: dict, inputs: Inputs) -> bool:
        return self.same_setup(previous, inputs.spec, inputs.llm_model or "")

    def client(self, inputs: Inputs) -> ChatClient:
        return ChatClient(inputs.spec, inputs.llm_model, api_key=inputs.api_key)

    def judge(self, inputs: Inputs) -> Verdicts:
        client = self.client(inputs)
        report = inputs.progress or (lambda fraction, stage: None)
        try:
            model = client.model_id()
            judgments, batch = [], []
            for i, p in enumerate(inputs.pairs):
                answer = client.ask(prompt_for(p.query, p.document))
                score = parse_score(answer)
                j = Judgment(p.pair_id, None if score is None else MAPPING[score],
                             None if score is None else float(score), answer, sure_irrelevant=score == 0)
                judgments.append(j)
                batch.append(j)
                if inputs.on_batch is not None and len(batch) >= BATCH:
                    inputs.on_batch(batch)
                    batch = []
                report((i + 1) / max(len(inputs.pairs), 1), "ask")
            if inputs.on_batch is not None and batch:
                inputs.on_batch(batch)
        finally:
            client.close()
        return Verdicts(judgments, self.settings(inputs.spec, model), "blind")

    def sure_irrelevant(self, score: float | None, label: int, settings: dict) -> bool:
        return label == 0 and score == 0
