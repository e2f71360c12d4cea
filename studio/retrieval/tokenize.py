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


# Chinese question words and sentence particles: in a query they ask, they are not what a document is about, so
# marking 有哪些 or 怎么 in a document only adds noise. Left out of highlighting only; BM25 keeps its terms.
_QUESTION_WORDS = ("为什么", "有哪些", "有什么", "有没有", "是什么", "是不是", "怎么办", "怎么样", "能不能",
                   "可不可以", "怎么", "怎样", "什么", "哪些", "哪个", "哪里", "如何", "是否", "能否", "吗", "呢")
_QUESTION = re.compile("|".join(map(re.escape, sorted(_QUESTION_WORDS, key=len, reverse=True))))


def highlight_terms(query: str) -> list[str]:
    """Terms of `query` worth highlighting in a document, longest first: what BM25 sees (:func:`tokenize`), without
    Chinese question words (有哪些, 怎么, 吗 ...).

    The query is cut at each question word, so no bigram spans one (症有, 哪些); a lone Chinese character left
    beside a cut (吃 of 吃什么) is dropped too, as it would mark that character all over the document.
    """
    pieces = _QUESTION.split(query)
    if len(pieces) == 1:
        terms = tokenize(query)
    else:
        terms = [term for piece in pieces for term in tokenize(piece) if not (len(term) == 1 and _IS_CJK.match(term))]
    return sorted(set(terms), key=len, reverse=True)
