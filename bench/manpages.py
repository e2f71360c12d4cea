"""Build BEIR retrieval sets from Debian's man pages: query = NAME summary, document = DESCRIPTION text.

``--lang zh`` reads the Chinese pages of package ``manpages-zh`` (/usr/share/man/zh_CN), ``--lang en`` the
English pages of ``manpages`` and ``manpages-dev``. Troff is converted to plain text by a small pure-Python
converter (deterministic on every machine, no groff needed). The train/test split is by page name, from a
seeded SHA-1, so it does not change between runs, machines or Python versions.

    python bench/manpages.py --lang zh --out .cache/bench/manpages-zh [--limit 40] [--seed 42]
"""

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = 3  # bump when the output changes, so that cached builds are rebuilt
PACKAGES = {"zh": ("manpages-zh",), "en": ("manpages", "manpages-dev")}
PAGE_PATH = {
    "zh": re.compile(r"^/usr/share/man/zh_CN/man[^/]+/[^/]+\.gz$"),
    "en": re.compile(r"^/usr/share/man/man[^/]+/[^/]+\.gz$"),
}
SKIP_REASONS = ("symlink", "so_redirect", "unreadable", "no_name", "no_description", "empty_description",
                "untranslated", "query_in_description")


class ManpagesError(RuntimeError):
    """A man page package is missing or unusable."""


# --- inline escapes ------------------------------------------------------------------------------------------

_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "mi": "-", "-": "-", "aq": "'", "dq": '"', "lq": "“", "rq": "”",
    "oq": "‘", "cq": "’", "Bq": "„", "bq": "‚", "Fo": "«", "Fc": "»", "fo": "‹", "fc": "›", "bu": "•",
    "co": "©", "rg": "®", "tm": "™", "de": "°", "dg": "†", "dd": "‡", "ps": "¶", "sc": "§", "ct": "¢",
    "Po": "£", "Ye": "¥", "Eu": "€", "eu": "€", "+-": "±", "mu": "×", "di": "÷", ">=": "≥", "<=": "≤",
    "!=": "≠", "==": "≡", "~=": "≅", "~~": "≈", "->": "→", "<-": "←", "<>": "↔", "ua": "↑", "da": "↓",
    "rA": "⇒", "lA": "⇐", "ga": "`", "ha": "^", "ti": "~", "sl": "/", "rs": "\\", "ul": "_", "ru": "_",
    "bv": "|", "br": "|", "ba": "|", "or": "|", "la": "⟨", "ra": "⟩", "fm": "′", "sd": "″", "pd": "∂",
    "**": "*", "pl": "+", "eq": "=", "ap": "~", "if": "∞", "sq": "□", "ci": "○", "lh": "☜", "rh": "☞",
    "12": "½", "14": "¼", "34": "¾", "S1": "¹", "S2": "²", "S3": "³", "ae": "æ", "AE": "Æ", "ss": "ß",
    "o/": "ø", "O/": "Ø", "mc": "µ", "at": "@", "sh": "#", "Do": "$", "en-dash": "–", "nbsp": " ",
    "*a": "α", "*b": "β", "*g": "γ", "*d": "δ", "*e": "ε", "*l": "λ", "*m": "μ", "*p": "π", "*s": "σ",
    "*t": "τ", "*W": "Ω", "*D": "Δ", "*S": "Σ", "*P": "Π", "tno": "¬", "no": "¬", "AN": "∧", "OR": "∨",
    "es": "∅", "mo": "∈", "sr": "√", "is": "∫", "pt": "∝", "ts": "ς", "OK": "✓", "lz": "◊",
}
_ACCENTS = {"'": "\u0301", "`": "\u0300", ":": "\u0308", "^": "\u0302", "~": "\u0303", ",": "\u0327",
            "o": "\u030a", "v": "\u030c"}
# Predefined strings of man(7), mdoc(7) and the pod2man preamble; they win over a page's own .ds (its ASCII
# stand-ins for terminals); unknown strings render as nothing.
_STRINGS = {
    "lq": "“", "rq": "”", "Lq": "“", "Rq": "”", "C`": '"', "C'": '"', 'L"': "“", 'R"': "”", "--": "—",
    "PI": "π", "Pi": "π", "TX": "TeX", "Tm": "™", "R": "®", "dg": "†", "Aq": "'", "Ba": "|", "Am": "&",
    "Ne": "≠", "Le": "≤", "Ge": "≥", "Lt": "<", "Gt": ">", "Pm": "±", "If": "∞", "Na": "NaN", "q": '"',
    "<=": "≤", ">=": "≥", "Ql": "`", "ga": "`", "aa": "´", "ua": "↑", "sL": "‘", "sR": "’",
}
_SINGLE = {"e": "\\", "E": "\\", "\\": "\\", "-": "-", " ": " ", "~": " ", "0": " ", "t": " ", "'": "'",
           "`": "`", ".": ".", "c": "\0"}  # \0 marks \c (join with the next line); others map to nothing
_DROPPED_SINGLE = set("&%|^:/,)+{}zpdura!?#\"")

_ARG = r"'(?:[^'\\]|\\[hvwlLoDbxXZNRSBCA]'[^']*'|\\.)*'"
_ESCAPE = re.compile(
    r"\\(?:"
    r"\((?P<g2>[^\n]{2})|\[(?P<gb>[^\]\n]*)\]"
    r"|\*(?:\((?P<s2>[^\n]{2})|\[(?P<sb>[^\]\n]*)\]|(?P<s1>.))"
    r"|[fF](?:\(..|\[[^\]]*\]|.)"
    r"|s(?:[-+]?\(\d\d|[-+]?\[[^\]]*\]|[-+]?" + _ARG + r"|[-+]\d|[1-3]\d|\d)"
    r"|[nkgjmMVY$][-+]?(?:\(..|\[[^\]]*\]|.)"
    r"|[hvwlLoDbxXZNRSBCA]" + _ARG +
    r"|(?P<c1>.)"
    r")", re.DOTALL)
_COMMENT = re.compile(r'^((?:[^\\]|\\.)*?)\\["#].*$', re.DOTALL)
_CJK = "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_SPACE = re.compile(f"(?<=[{_CJK}])[ \t]+(?=[{_CJK}])")
_CJK_CHAR = re.compile(f"[{_CJK}]")
_FULL_WIDTH_PUNCT = re.compile("[\u3000-\u303f\uff01-\uff0f\uff1a-\uff20\uff3b-\uff40\uff5b-\uff65]")
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")


def glyph(name: str) -> str:
    """A troff named character (``\\(em``, ``\\[u00E9]``, ``\\['e]``) as text; unknown names give ``""``."""
    if name in _GLYPHS:
        return _GLYPHS[name]
    if re.fullmatch(r"u[0-9A-Fa-f]{4,6}(?:_[0-9A-Fa-f]{4,6})*", name):
        return unicodedata.normalize("NFC", "".join(chr(int(h, 16)) for h in name[1:].split("_")))
    if re.fullmatch(r"char\d+", name):
        return chr(int(name[4:]))
    if len(name) == 2 and name[0] in _ACCENTS and name[1].isalpha():
        return unicodedata.normalize("NFC", name[1] + _ACCENTS[name[0]])
    if len(name) == 2 and name[1] in _ACCENTS and name[0].isalpha():
        return unicodedata.normalize("NFC", name[0] + _ACCENTS[name[1]])
    return ""


def inline(text: str, strings: dict[str, str] | None = None) -> str:
    """Render the escapes of one line of troff text; ``\\c`` comes back as ``\\0``."""
    if "\\" not in text:
        return text
    table = _STRINGS if strings is None else strings

    def one(match: re.Match) -> str:
        groups = match.groupdict()
        if groups["g2"] is not None or groups["gb"] is not None:
            return glyph(groups["g2"] if groups["g2"] is not None else groups["gb"])
        name = groups["s2"] or groups["sb"] or groups["s1"]
        if name is not None:
            return table.get(name, "")
        char = groups["c1"]
        if char is None or char in _DROPPED_SINGLE:
            return ""
        return _SINGLE.get(char, char)

    return _ESCAPE.sub(one, text)


def split_args(text: str) -> list[str]:
    """Split a request's arguments the troff way: blanks separate, ``"..."`` quotes, ``""`` is a quote."""
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] == '"':
            i += 1
            buf: list[str] = []
            while i < n:
                if text[i] == '"':
                    if text[i + 1:i + 2] == '"':
                        buf.append('"')
                        i += 2
                        continue
                    i += 1
                    break
                step = 2 if text[i] == "\\" else 1
                buf.append(text[i:i + step])
                i += step
            args.append("".join(buf))
        else:
            j = i
            while j < n and text[j] not in " \t":
                j += 2 if text[j] == "\\" else 1
            args.append(text[i:j])
            i = j
    return args


def normalize(text: str) -> str:
    """Collapse blanks, drop the blanks between two CJK characters (old translations spaced out words)."""
    return _CJK_SPACE.sub("", _SPACES.sub(" ", text)).strip()


# --- lines and sections --------------------------------------------------------------------------------------

_CONTROL = re.compile(r"^[.'][ \t]*([^\s\\]*)[ \t]*(.*)$", re.DOTALL)


def parse_control(line: str) -> tuple[str, str] | None:
    """``(request, rest)`` for a control line (``.xx`` or ``'xx``), else None."""
    if not line or line[0] not in ".'":
        return None
    match = _CONTROL.match(line)
    return (match.group(1), match.group(2)) if match else ("", "")


def logical_lines(source: str) -> list[str]:
    """Lines without comments, escaped newlines, macro definitions and ``.ig`` blocks; conditionals resolved."""
    joined: list[str] = []
    pending = ""
    for raw in source.replace("\r\n", "\n").split("\n"):
        had_text = bool(raw.strip())
        line = _COMMENT.sub(r"\1", raw) if "\\" in raw else raw
        if had_text and not line.strip() and not pending:
            continue  # a comment-only line
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:  # an odd number of backslashes: the newline is escaped
            pending += line[:-1]
            continue
        joined.append(pending + line)
        pending = ""
    if pending:
        joined.append(pending)
    return _drop_blocks(joined)


def _drop_blocks(lines: list[str]) -> list[str]:
    """Drop ``.de``/``.am``/``.ig`` bodies; resolve ``.if``/``.ie``/``.el`` as nroff (``n`` true, ``t`` false)."""
    out: list[str] = []
    todo = deque(lines)
    end: str | None = None  # the terminator of a macro definition being skipped
    skip = 0  # open \{ of a false conditional block
    kept = 0  # open \{ of a true conditional block, whose \} is dropped
    ie_results: list[bool] = []
    while todo:
        line = todo.popleft()
        if end is not None:
            control = parse_control(line)
            if control and control[0] == end:
                end = None
            continue
        if skip:
            skip = max(0, skip + line.count("\\{") - line.count("\\}"))
            continue
        if kept and "\\}" in line:
            kept = max(0, kept - line.count("\\}"))
            line = line.replace("\\}", "")
            if line.strip() in ("", ".", "'"):
                continue
        control = parse_control(line)
        if control is None:
            out.append(line)
            continue
        request, rest = control
        if request in ("de", "de1", "am", "ig", "dei", "ami"):
            args = rest.split()
            end = (args[1] if len(args) > 1 else ".") if request != "ig" else (args[0] if args else ".")
        elif request in ("if", "ie", "el", "while"):
            if request == "el":
                true, body = not (ie_results.pop() if ie_results else True), rest
            else:
                true, body = condition(rest)
                if request == "ie":
                    ie_results.append(true)
            body = body.lstrip()
            opens = body.startswith("\\{")
            body = body[2:].lstrip() if opens else body
            if true:
                kept += opens
                if body.strip():
                    todo.appendleft(body)
            elif opens:
                skip = max(0, 1 + body.count("\\{") - body.count("\\}"))
        else:
            out.append(line)
    return out


def condition(text: str) -> tuple[bool, str]:
    """Evaluate the condition at the start of a ``.if``/``.ie`` argument as nroff would; ``(value, body)``.

    ``n`` is true, ``t``/``e``/``o``/``v`` are false, ``'a'b'`` compares rendered strings, ``\\n(.g`` (running
    groff) is true; other register tests and expressions are taken as false.
    """
    text = text.lstrip()
    negate = text.startswith("!")
    text = text[1:] if negate else text
    value = False
    if text[:1] in ("'", '"', "|", "#"):
        delim = text[0]
        parts = text[1:].split(delim, 2)
        if len(parts) == 3:
            value, text = inline(parts[0]) == inline(parts[1]), parts[2]
        else:
            text = ""
    elif re.match(r"[ntoev](?:\s|\\\{|$)", text):
        value, text = text[0] == "n", text[1:]
    elif re.match(r"[dmrcFS]\s", text):
        text = text[2:].lstrip()
        text = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    else:
        token, _, text = text.partition(" ")
        value = token in ("\\n(.g", "\\n[.g]") or (token.isdigit() and int(token) > 0)
    return value != negate, text


@dataclass
class Section:
    """A ``.SH`` section: its heading (plain text) and raw lines."""

    heading: str
    lines: list[str] = field(default_factory=list)


def split_sections(lines: list[str], strings: dict[str, str]) -> list[Section]:
    """Cut lines at ``.SH`` (mdoc: ``.Sh``); text before the first heading is dropped; ``.ds`` fills `strings`."""
    sections: list[Section] = []
    # pod2man pages define .Sh as a subsection; it starts a section only in mdoc pages (which have no .SH)
    headings = ("SH",) if any(line.startswith(".SH") for line in lines) else ("SH", "Sh")
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        control = parse_control(line)
        if control and control[0] == "ds":
            name, _, value = control[1].partition(" ")
            if name not in _STRINGS:  # the built-in Unicode forms beat the pages' ASCII approximations
                strings[name] = inline(value.lstrip().removeprefix('"'), strings).replace("\0", "")
            continue
        if not control or control[0] not in headings:
            if sections:
                sections[-1].lines.append(line)
            continue
        args = control[1]
        if not args.strip() and i < len(lines):  # the heading is on the next line
            following = parse_control(lines[i])
            args = following[1] if following else lines[i]
            i += 1
        heading = normalize(inline(" ".join(split_args(args)), strings).replace("\0", ""))
        sections.append(Section(heading))
    return sections


_NAME_WORDS = {"NAME", "名称", "名字", "名稱", "命令名"}
_DESCRIPTION_WORDS = {"DESCRIPTION", "描述", "描叙", "说明", "叙述", "描述信息"}
# Used only when a page has no DESCRIPTION-like heading (svn: OVERVIEW, Tcl: INTRODUCTION, LAPACK: PURPOSE).
_FALLBACK_WORDS = {"INTRODUCTION", "介绍", "OVERVIEW", "PURPOSE", "总述"}


def heading_kind(heading: str) -> str | None:
    """``"name"``, ``"description"``, ``"fallback"`` or None; headings mix languages: ``描述 (DESCRIPTION)``."""
    words = {word.upper() for word in re.split(r"[\s\"'()（）\[\]【】:：]+", heading) if word}
    if words & _NAME_WORDS:
        return "name"
    if words & _DESCRIPTION_WORDS:
        return "description"
    if words & _FALLBACK_WORDS:
        return "fallback"
    return None


# --- rendering -----------------------------------------------------------------------------------------------

class Writer:
    """Collects rendered text: paragraphs of lines; in fill mode input lines join into one line."""

    def __init__(self) -> None:
        self.paragraphs: list[list[str]] = [[]]
        self.line = ""
        self.glue = False  # the previous text ended with \c

    def add(self, text: str) -> None:
        """Append text to the current line, with a blank unless glued or between CJK characters."""
        glue_next = text.endswith("\0")
        body = text.replace("\0", "")
        if body.strip():
            if self.line and not self.glue and not _cjk_boundary(self.line, body):
                self.line += " "
            body = body if self.glue else body.lstrip()
            self.line += body if glue_next else body.rstrip()
        self.glue = glue_next

    def newline(self) -> None:
        """End the current output line."""
        if self.line.strip():
            self.paragraphs[-1].append(self.line)
        self.line = ""
        self.glue = False

    def paragraph(self) -> None:
        """End the current paragraph."""
        self.newline()
        if self.paragraphs[-1]:
            self.paragraphs.append([])

    def text(self) -> str:
        """Paragraphs separated by a blank line, lines by a newline, blanks collapsed."""
        self.newline()
        paragraphs = []
        for lines in self.paragraphs:
            kept = [normalize(line) for line in lines]
            kept = [line for line in kept if line]
            if kept:
                paragraphs.append("\n".join(kept))
        return "\n\n".join(paragraphs)


def _cjk_boundary(left: str, right: str) -> bool:
    """True when two pieces join without a blank: CJK on both sides, or full-width punctuation on one."""
    last, first = left[-1:], right.lstrip()[:1]
    if _FULL_WIDTH_PUNCT.match(last) or _FULL_WIDTH_PUNCT.match(first):
        return True
    return bool(_CJK_CHAR.match(last)) and bool(_CJK_CHAR.match(first))


_PARAGRAPH = {"PP", "LP", "P", "Pp", "Lp", "HP", "sp", "Sp", "SH", "Sh", "SS", "Ss", "bp", "DS", "DE", "BS", "BE",
              "Bl", "El"}
_BREAK = {"br", "ce", "RS", "RE", "in", "ti", "Dl", "D1", "Bd", "Ed", "fi", "nf", "EX", "EE", "Vb", "Ve", "CS",
          "CE", "SO", "SE", "OP", "AP", "SY", "YS", "It", "TQ", "IP", "TP", "Ip"}
_NOFILL_ON = {"nf", "EX", "Vb", "CS", "DS", "SO"}
_NOFILL_OFF = {"fi", "EE", "Ve", "CE", "DE", "SE"}
_FONT_SPACED = {"B", "I", "SM", "SB"}
# mdoc macros that only change the font or mark up a word: dropped, their arguments stay
_MDOC_MARKUP = {"Tn", "Li", "Sy", "Em", "Ar", "Pa", "Cm", "Ic", "Ev", "Dv", "Va", "Ad", "An", "Cd", "Ft", "Fa",
                "Er", "Sx", "Ms", "Mt", "Lk", "No", "Nx", "Ox", "Fx", "Fn", "Fo", "Fc", "Dl", "D1", "It", "Xo",
                "Xc", "Ot", "Fd", "In", "Pf"}
_FONT_ALTERNATING = {"BR", "RB", "IR", "RI", "BI", "IB"}
_IGNORED = {"TH", "Dd", "Dt", "Os", "ad", "na", "nh", "hy", "ft", "ps", "vs", "ll", "ta", "nr", "rr", "rm", "tr",
            "ev", "mk", "rt", "ns", "rs", "cs", "ss", "ul", "cu", "lf", "hw", "DT", "UC", "IX", "so", "tm", "ab",
            "fam", "PD", "ne", "ie", "el", "if", "AS", "VS", "VE", "pc", "nx", "wh", "ch", "it", "em", "fc", "lc",
            "mc", "cc", "c2", "ec", "eo", "uf", "hc", "hla", "hlm", "hpf", "ds", "as", "de", "TS", "TE", "T&",
            "Xo", "Xc", "Sm", "Ex", "Rv", "Bk", "Ek", "Db", "Ud", "Rs", "Re", "Bf", "Ef", "INDENT", "UNINDENT", ""}
_MDOC_WRAP = {"Op": ("[", "]"), "Dq": ("“", "”"), "Pq": ("(", ")"), "Sq": ("‘", "’"), "Ql": ("‘", "’"),
              "Qq": ('"', '"'), "Aq": ("<", ">"), "Bq": ("[", "]"), "Brq": ("{", "}")}
_MDOC_OPEN = {"Oo": "[", "Do": "“", "Po": "(", "So": "‘", "Qo": '"', "Ao": "<", "Bo": "[", "Bro": "{"}
_MDOC_CLOSE = {"Oc": "]", "Dc": "”", "Pc": ")", "Sc": "’", "Qc": '"', "Ac": ">", "Bc": "]", "Brc": "}"}
_MDOC_TEXT = {"Ux": "UNIX", "At": "AT&T UNIX", "Bsx": "BSD/OS", "Bx": "BSD"}
_MDOC = (_MDOC_MARKUP | set(_MDOC_WRAP) | set(_MDOC_OPEN) | set(_MDOC_CLOSE) | set(_MDOC_TEXT)
         | {"Nm", "Nd", "Xr", "Fl", "Ns"})
_PUNCTUATION = set(".,:;)]?!")


class Renderer:
    """Turns the lines of one section into plain text."""

    def __init__(self, strings: dict[str, str], page_name: str = "") -> None:
        self.strings = strings
        self.page_name = page_name
        self.out = Writer()
        self.nofill = False
        self.tag_pending = False  # the next text is a .TP tag, followed by a line break
        self.link = ""  # the address of an open .UR/.MT

    def render(self, lines: list[str]) -> str:
        """Render section lines to text."""
        i = 0
        while i < len(lines):
            control = parse_control(lines[i])
            if control and control[0] == "TS":
                end = next((j for j in range(i + 1, len(lines)) if (parse_control(lines[j]) or ("",))[0] == "TE"),
                           len(lines))
                self.table(lines[i + 1:end])
                i = end + 1
                continue
            if control is None:
                self.text_line(lines[i])
            else:
                self.request(*control)
            i += 1
        return self.out.text()

    def inline(self, text: str) -> str:
        return inline(text, self.strings)

    def emit(self, text: str) -> None:
        """Output rendered text; ends the line in no-fill mode or after a .TP tag."""
        if not text.replace("\0", "").strip() and not self.nofill:
            return
        self.out.add(text)
        if self.tag_pending:
            self.tag_pending = False
            self.out.newline()
        elif self.nofill and not text.endswith("\0"):
            self.out.newline()

    def text_line(self, line: str) -> None:
        if not line.strip():
            if not self.nofill:
                self.out.paragraph()
            return
        self.emit(self.inline(line))

    def request(self, name: str, rest: str) -> None:
        args = split_args(rest)
        if name in _PARAGRAPH:
            self.out.paragraph()
        elif name in _BREAK:
            self.out.newline()
        if name in _NOFILL_ON:
            self.nofill = True
        elif name in _NOFILL_OFF:
            self.nofill = False
        if name in _FONT_ALTERNATING:
            self.emit("".join(self.inline(arg) for arg in args))
        elif name in ("TP", "TQ"):
            self.tag_pending = True
        elif name in ("IP", "Ip", "It"):
            tag = self.mdoc(args) if name == "It" else self.inline(args[0]) if args else ""
            self.emit(tag)
        elif name in ("SS", "Ss", "SH", "Sh"):
            self.emit(self.inline(" ".join(args)))
            self.out.newline()
        elif name == "OP" and args or name == "AP" and args:
            self.emit(" ".join(self.inline(arg) for arg in args[:3]))
            self.out.newline()
        elif name in ("UR", "MT"):
            self.link = self.inline(args[0]) if args else ""
        elif name in ("UE", "ME"):
            if self.link:
                self.emit(f"<{self.link}>\0" if args else f"<{self.link}>")
            if args:
                self.emit(self.inline(args[0]))
            self.link = ""
        elif name in _MDOC:
            self.emit(self.mdoc([name, *args]))
        elif name in _FONT_SPACED or name in ("QW", "PQ", "QR", "UL"):
            self.emit(" ".join(self.inline(arg) for arg in args))
        elif name in _IGNORED or name in _PARAGRAPH or name in _BREAK or name in _NOFILL_ON | _NOFILL_OFF:
            pass
        elif args and not re.fullmatch(r"[a-z]{2}|\W+", name):  # an unknown macro: keep its words
            self.emit(" ".join(self.inline(arg) for arg in args))

    def mdoc(self, tokens: list[str]) -> str:
        """Render an mdoc macro line: macro names call, the other tokens are words."""
        words: list[str] = []
        glue = False
        i = 0
        while i < len(tokens):
            token = tokens[i]
            i += 1
            if token in _MDOC_WRAP:
                left, right = _MDOC_WRAP[token]
                rest = tokens[i:]
                cut = len(rest)
                while cut > 0 and rest[cut - 1] in _PUNCTUATION:  # trailing punctuation goes outside
                    cut -= 1
                text, i = f"{left}{self.mdoc(rest[:cut])}{right}{''.join(rest[cut:])}", len(tokens)
            elif token in _MDOC_OPEN:
                words.append(_MDOC_OPEN[token])
                glue = True
                continue
            elif token in _MDOC_CLOSE:
                words[-1:] = [(words[-1] if words else "") + _MDOC_CLOSE[token]]
                continue
            elif token == "Ns":
                glue = True
                continue
            elif token == "Fl":
                nxt = tokens[i] if i < len(tokens) and tokens[i] not in _MDOC else ""
                text, i = "-" + self.inline(nxt), i + (1 if nxt else 0)
            elif token == "Nm":
                nxt = tokens[i] if i < len(tokens) and tokens[i] not in _MDOC else ""
                if nxt and not self.page_name:
                    self.page_name = self.inline(nxt)
                text, i = (self.inline(nxt) if nxt else self.page_name), i + (1 if nxt else 0)
            elif token == "Nd":
                text = "-"
            elif token == "Xr" and i + 1 < len(tokens):
                text, i = f"{self.inline(tokens[i])}({self.inline(tokens[i + 1])})", i + 2
            elif token in _MDOC_TEXT:
                text = _MDOC_TEXT[token]
            elif token in _MDOC_MARKUP:
                continue
            else:
                text = self.inline(token)
            if words and (glue or (len(text) == 1 and text in _PUNCTUATION)):
                words[-1] += text
            else:
                words.append(text)
            glue = False
        return " ".join(words)

    def table(self, lines: list[str]) -> None:
        """Render a tbl table: one line per row, cells separated by blanks; T{ T} blocks are joined."""
        self.out.paragraph()
        for cells in table_rows(lines):
            self.out.add(" ".join(self.render_cell(cell) for cell in cells if cell.strip()))
            self.out.newline()
        self.out.paragraph()

    def render_cell(self, cell: str) -> str:
        parts = []
        for line in cell.split("\n"):
            control = parse_control(line)
            if control is None:
                parts.append(self.inline(line))
            elif control[0] in _FONT_ALTERNATING:
                parts.append("".join(self.inline(arg) for arg in split_args(control[1])))
            elif control[0] in _FONT_SPACED or control[0] in _MDOC:
                parts.append(" ".join(self.inline(arg) for arg in split_args(control[1])))
        return " ".join(part.replace("\0", "") for part in parts if part.strip())


def table_rows(lines: list[str]) -> list[list[str]]:
    """The data rows of a tbl table (options and format lines skipped), each a list of cell sources."""
    tab = "\t"
    i = 0
    if lines and lines[0].rstrip().endswith(";"):  # the options line
        found = re.search(r"tab\s*\((.)\)", lines[0])
        tab = found.group(1) if found else tab
        i = 1
    i = _skip_format(lines, i)
    rows: list[list[str]] = []
    row = ""  # the source of the current row; a T{ ... T} block keeps its newlines
    in_block = False
    while i < len(lines):
        line = lines[i]
        i += 1
        if in_block:
            if not line.startswith("T}"):
                row += "\n" + line
                continue
            in_block, row = False, row + line[2:]
        else:
            control = parse_control(line)
            if control and control[0] == "T&":
                i = _skip_format(lines, i)
                continue
            if re.fullmatch(r"\s*(?:[_=]|\\_)\s*", line) or control:
                continue  # rules and requests
            row = line
        if row.rstrip().endswith("T{"):
            row, in_block = row.rstrip()[:-2], True
            continue
        rows.append(row.split(tab))
        row = ""
    if row:
        rows.append(row.split(tab))
    return rows


def _skip_format(lines: list[str], i: int) -> int:
    """Skip tbl format lines up to and including the one ending with a period."""
    while i < len(lines):
        i += 1
        if lines[i - 1].rstrip().endswith("."):
            break
    return i


def troff_to_text(source: str, strings: dict[str, str] | None = None) -> str:
    """Convert a troff fragment (no section structure needed) to plain text."""
    table = dict(_STRINGS if strings is None else strings)
    lines = logical_lines(source)
    return Renderer(table).render(lines)


# --- pages ---------------------------------------------------------------------------------------------------

_DASH = "[-–—−－]{1,2}"
# "ls \- list", "pgtclsh \-\- x", "xpdf \-Portable", "perldata\- Perl"; a full-width or em dash needs no blank
_SEPARATOR = re.compile(rf"\s+{_DASH}\s*|\s*{_DASH}\s+|\s*[－—]{{1,2}}\s*")
_REVISION_DATE = re.compile(r"\s*\(\s*\d{4}/\d\d/\d\d[^)]*\)\s*$")  # perlfaq: "网络 (2003/01/31 17:36:57 )"
_NEXT_ENTRY = re.compile(r"\s+[\w.+-]+(?:,\s*[\w.+-]+)*\s+-\s")


def name_summary(name_text: str, page_name: str = "") -> str:
    """The summary of a NAME line: ``ls, dir - list directory`` gives ``list directory``; "" if none."""
    text = normalize(name_text.replace("\n", " "))
    match = _SEPARATOR.search(text)
    if match and match.start() > 0:
        summary = text[match.end():]
        following = _NEXT_ENTRY.search(summary)  # "bzip2 \- x" then "bzcat \- y": keep the first entry's
        summary = summary[:following.start()] if following else summary
        return _REVISION_DATE.sub("", summary).strip()
    if page_name and text.startswith(page_name + " "):  # "named-bootconf 转换..." has no separator
        return text[len(page_name):].strip()
    return ""


@dataclass
class Page:
    """One parsed man page: the NAME summary (query) and DESCRIPTION text (document)."""

    query: str
    description: str


def parse_page(source: str, page_name: str = "") -> Page | str:
    """Parse a page's troff; returns a Page or the skip reason."""
    strings = dict(_STRINGS)
    lines = logical_lines(source)
    requests = {control[0] for control in map(parse_control, lines) if control}
    if "so" in requests and not requests & {"SH", "Sh"}:  # a page that only includes another
        return "so_redirect"
    sections = split_sections(lines, strings)
    kinds = [heading_kind(s.heading) for s in sections]
    name = next((s for s, kind in zip(sections, kinds) if kind == "name"), None)
    description = next((s for s, kind in zip(sections, kinds) if kind == "description"),
                       next((s for s, kind in zip(sections, kinds) if kind == "fallback"), None))
    query = name_summary(Renderer(strings, page_name).render(name.lines), page_name) if name else ""
    if not query:
        return "no_name"
    if description is None:
        return "no_description"
    text = Renderer(strings, page_name).render(description.lines)
    if not text:
        return "empty_description"
    return Page(normalize(query), text)


def page_id(path: str) -> tuple[str, str]:
    """``(name, section)`` from a file name: ``printf.3.gz`` gives ``("printf", "3")``."""
    base = os.path.basename(path)
    base = base.removesuffix(".gz")
    name, dot, section = base.rpartition(".")
    return (name, section) if dot and name else (base, "")


def _unit(seed: int, purpose: str, name: str) -> float:
    """A number in [0, 1) from SHA-1 of seed, purpose and name: stable everywhere, unlike ``hash()``."""
    digest = hashlib.sha1(f"{seed}:{purpose}:{name}".encode()).hexdigest()
    return int(digest[:13], 16) / 16 ** 13


def split_of(name: str, seed: int = 42, test_fraction: float = 0.4) -> str:
    """``"test"`` or ``"train"`` for a page name."""
    return "test" if _unit(seed, "split", name) < test_fraction else "train"


def doc_id(text: str) -> str:
    return "d-" + hashlib.sha1(text.encode()).hexdigest()[:12]


# --- building ------------------------------------------------------------------------------------------------

@dataclass
class Entry:
    """A kept page."""

    query_id: str
    name: str
    query: str
    description: str


def read_source(path: str) -> str:
    """A page's troff text (gzip or plain), decoded as UTF-8 with replacement."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


def collect(paths: list[str], lang: str) -> tuple[list[Entry], Counter]:
    """Parse page files; returns the kept entries (sorted by query id) and skip counts per reason."""
    skipped: Counter = Counter()
    entries: list[Entry] = []
    used: set[str] = set()
    for path in sorted(paths):
        if os.path.islink(path):
            skipped["symlink"] += 1
            continue
        name, section = page_id(path)
        try:
            result = parse_page(read_source(path), name)
        except (OSError, EOFError, gzip.BadGzipFile):
            result = "unreadable"
        if isinstance(result, str):
            skipped[result] += 1
            continue
        reason = check(result, lang)
        if reason:
            skipped[reason] += 1
            continue
        query_id = f"{name}.{section}" if section else name
        suffix = 2
        while query_id in used:  # the same file name in two folders
            query_id, suffix = f"{name}.{section}~{suffix}", suffix + 1
        used.add(query_id)
        entries.append(Entry(query_id, name, result.query, result.description))
    return sorted(entries, key=lambda e: e.query_id), skipped


def check(page: Page, lang: str) -> str | None:
    """The skip reason of a parsed page, or None to keep it."""
    if lang == "zh" and not (_HAN.search(page.query) and _HAN.search(page.description)):
        return "untranslated"
    if page.query.casefold() in page.description.casefold():
        return "query_in_description"
    return None


def select(entries: list[Entry], limit: int | None, seed: int) -> list[Entry]:
    """The first `limit` entries in the seeded order of page names (all when limit is None)."""
    ordered = sorted(entries, key=lambda e: (_unit(seed, "order", e.name), e.name, e.query_id))
    return sorted(ordered[:limit] if limit is not None else ordered, key=lambda e: e.query_id)


def read_qrels(path: Path) -> dict[str, dict[str, int]]:
    """query id → {document id: score} of one qrels file as write_beir writes it (header optional)."""
    out: dict[str, dict[str, int]] = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
        parts = line.split("\t")
        if len(parts) < 3 or (n == 0 and not parts[2].strip().lstrip("-").isdigit()):
            continue
        out.setdefault(parts[0], {})[parts[1]] = int(parts[2])
    return out


def write_beir(entries: list[Entry], folder: Path, seed: int, test_fraction: float) -> dict:
    """Write corpus, queries and qrels; returns counts.

    Pages with the same description share one document; pages with the same summary (``copy memory area``:
    memcpy and memmove) share one query, relevant to each of their documents, in the split of the first page.
    """
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    documents: dict[str, str] = {}
    groups: dict[str, list[Entry]] = {}
    for entry in entries:
        documents.setdefault(doc_id(entry.description), entry.description)
        groups.setdefault(entry.query.casefold(), []).append(entry)
    qrels: dict[str, list[str]] = {"train": [], "test": []}
    with open(folder / "queries.jsonl", "w", encoding="utf-8") as queries:
        for group in groups.values():
            first = group[0]
            queries.write(json.dumps({"_id": first.query_id, "text": first.query}, ensure_ascii=False) + "\n")
            keys = dict.fromkeys(doc_id(entry.description) for entry in group)
            split = split_of(first.name, seed, test_fraction)
            qrels[split].extend(f"{first.query_id}\t{key}\t1\n" for key in keys)
    with open(folder / "corpus.jsonl", "w", encoding="utf-8") as corpus:
        corpus.writelines(json.dumps({"_id": key, "title": "", "text": text}, ensure_ascii=False) + "\n"
                          for key, text in documents.items())
    for split, rows in qrels.items():
        with open(folder / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            handle.writelines(rows)
    per_split = {split: len({row.split("\t", 1)[0] for row in rows}) for split, rows in qrels.items()}
    return {"documents": len(documents), "queries": per_split, "qrels": {k: len(v) for k, v in qrels.items()},
            "shared_documents": len(entries) - len(documents), "merged_queries": len(entries) - len(groups)}


def _dpkg(command: list[str], package: str) -> str:
    """Run a dpkg command about `package`; its output, or a ManpagesError that says how to install it."""
    try:
        found = subprocess.run([*command, package], capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise ManpagesError(f"{command[0]} is not available, so package {package} cannot be read; "
                            f"this needs a Debian system with `apt-get install -y {package}`") from error
    if found.returncode != 0:
        raise ManpagesError(f"package {package} is not installed: run `apt-get install -y {package}` "
                            f"({command[0]}: {found.stderr.strip()})")
    return found.stdout


def package_files(package: str) -> list[str]:
    """The files of an installed Debian package (``dpkg -L``)."""
    return _dpkg(["dpkg", "-L"], package).splitlines()


def package_version(package: str) -> str:
    """The installed version of a Debian package."""
    return _dpkg(["dpkg-query", "-W", "-f=${Version}"], package).strip()


def page_files(lang: str) -> list[str]:
    """The man page files of the language's packages; raises ManpagesError naming a missing package."""
    paths: list[str] = []
    for package in PACKAGES[lang]:
        listed = [path for path in package_files(package) if PAGE_PATH[lang].match(path)]
        present = [path for path in listed if os.path.lexists(path)]
        if not present:
            raise ManpagesError(
                f"package {package} lists {len(listed)} man pages but none is on disk: reinstall it with "
                f"`apt-get install --reinstall -y {package}` (and check that dpkg does not exclude "
                "/usr/share/man, e.g. /etc/dpkg/dpkg.cfg.d/excludes in slim images)")
        paths.extend(present)
    return paths


def build(lang: str, out: Path, limit: int | None = None, seed: int = 42, test_fraction: float = 0.4) -> dict:
    """Build the BEIR folder `out` for ``zh`` or ``en``; returns the stats.

    Nothing is rebuilt when `out` holds a build with the same parameters and package versions (its
    ``manifest.json``); the stats then say ``"cached": true``.
    """
    if lang not in PACKAGES:
        raise ValueError(f"lang must be one of {sorted(PACKAGES)}, not {lang!r}")
    if not 0 < test_fraction < 1:
        raise ValueError("test_fraction must be between 0 and 1")
    if limit is not None and limit < 1:
        raise ValueError("limit must be at least 1")
    out = Path(out)
    params = {"lang": lang, "limit": limit, "seed": seed, "test_fraction": test_fraction, "format": FORMAT}
    packages = {package: package_version(package) for package in PACKAGES[lang]}
    cached = _cached_stats(out, params, packages)
    if cached is not None:
        return cached
    start = time.perf_counter()
    paths = page_files(lang)
    return build_from_files(paths, lang, out, limit=limit, seed=seed, test_fraction=test_fraction,
                            manifest={"params": params, "packages": packages}, start=start)


def build_from_files(paths: list[str], lang: str, out: Path, limit: int | None = None, seed: int = 42,
                     test_fraction: float = 0.4, manifest: dict | None = None,
                     start: float | None = None) -> dict:
    """Build the BEIR folder `out` from the given page files, atomically; returns the stats."""
    start = time.perf_counter() if start is None else start
    entries, skipped = collect(paths, lang)
    chosen = select(entries, limit, seed)
    if not chosen:
        raise ManpagesError(f"none of the {len(paths)} page files is usable: {dict(skipped)}")
    out = Path(out)
    _check_replaceable(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        temp.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
        counts = write_beir(chosen, temp, seed, test_fraction)
        stats = {"lang": lang, "pages_seen": len(paths), "pages_eligible": len(entries),
                 "pages_kept": len(chosen), "skipped": {r: skipped[r] for r in SKIP_REASONS if skipped[r]},
                 **counts, "limit": limit, "seed": seed, "test_fraction": test_fraction,
                 "build_s": round(time.perf_counter() - start, 2), "out": str(out)}
        record = {**(manifest or {}), "stats": stats}
        (temp / "manifest.json").write_text(json.dumps(record, ensure_ascii=False, indent=1) + "\n",
                                            encoding="utf-8")
        _replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return {**stats, "cached": False}


def _cached_stats(out: Path, params: dict, packages: dict) -> dict | None:
    try:
        record = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("params") != params or record.get("packages") != packages:
        return None
    if not all((out / name).is_file() for name in ("corpus.jsonl", "queries.jsonl", "qrels/test.tsv")):
        return None
    return {**record["stats"], "out": str(out), "cached": True}


def _check_replaceable(out: Path) -> None:
    """Refuse to overwrite anything but an empty folder or an earlier build (``--out .`` must not wipe a repo)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ManpagesError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "manifest.json").is_file():
        raise ManpagesError(f"{out} is not empty and has no manifest.json of an earlier build: "
                            "choose another --out")


def _replace(new: Path, out: Path) -> None:
    """Put folder `new` at `out`; an old `out` is moved aside first, then deleted."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.rename(out, old)
    os.rename(new, out)
    if old is not None:
        shutil.rmtree(old)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=sorted(PACKAGES), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None, help="use only N pages (smoke runs)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--test-fraction", type=float, default=0.4)
    args = parser.parse_args(argv)
    try:
        stats = build(args.lang, args.out, limit=args.limit, seed=args.seed, test_fraction=args.test_fraction)
    except (ManpagesError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(stats, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
