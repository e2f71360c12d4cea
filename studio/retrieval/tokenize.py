"""A tokenizer for BM25 over mixed Chinese/English text.

Chinese has no spaces, so a word tokenizer sees a whole sentence as one token and BM25 finds nothing. Without a
segmenter dictionary, overlapping character bigrams are the standard robust choice for Chinese IR; Latin-script
words are lower-cased and kept whole.
"""

from __future__ import annotations

import re

_CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+", re.UNICODE)
_IS_CJK = re.compile(rf"[{_CJK}]")
_STOPWORDS = frozenset(
    "a an and are as at be but by can do does for from has have how i if in into is it its of on or that the "
    "their there these this to was what when where which who why will with you your".split()
)


def tokenize(text: str) -> list[str]:
    """Split `text` into BM25 terms: Latin words, and bigrams (or single characters) of Chinese runs."""
    terms: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        run = match.group()
        if _IS_CJK.match(run):
            terms.extend([run] if len(run) == 1 else [run[i:i + 2] for i in range(len(run) - 1)])
        elif run not in _STOPWORDS and (len(run) > 1 or run.isdigit()):
            terms.append(run)
    return terms


def highlight_terms(query: str) -> list[str]:
    """Terms of `query` worth highlighting in a document (same rules as BM25 sees them)."""
    return sorted(set(tokenize(query)), key=len, reverse=True)
