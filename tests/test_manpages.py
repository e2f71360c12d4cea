"""Tests of bench/manpages.py: the troff converter, NAME parsing, skip rules, dedupe, split and the BEIR output."""

import gzip
import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.ingest.beir import read_beir

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "data" / "manpages"


def _load():
    spec = importlib.util.spec_from_file_location("bench_manpages", ROOT / "bench" / "manpages.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


mp = _load()


def text(source: str) -> str:
    return mp.troff_to_text(source)


# --- escapes -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "expected"), [
    (r"\fBbold\fR and \fIitalic\fP \f(CWcode\fP \f[B]x\f[]", "bold and italic code x"),
    (r"\-a \(em b \(en c \(aq\(lqq\(rq\(dq", "-a — b – c '“q”\""),
    (r"\[em] \[lq]x\[rq] \[u00E9]t\[u00E9] \['e] \[:u] \[char65] \[bu]", "— “x” été é ü A •"),
    (r"a\e b \\ c", "a\\ b \\ c"),
    (r"\&.dot \%hyphen\:less a\ b a\~b a\0b", ".dot hyphenless a b a b a b"),
    (r"\s-1SMALL\s0 \s+2big\s0 \s(12x", "SMALL big x"),
    (r"\*(lqquoted\*(rq \*(C`x\*(C' \*[lq]y\*[rq] \*(Xzend", "“quoted” \"x\" “y” end"),
    (r"\h'-\w'abc'u'moved \v'.3m'up\n(.gnr", "moved upnr"),
    (r"\(co \(rg \(de \(+- \(>= \(<= \(mu \(*p \(bv", "© ® ° ± ≥ ≤ × π |"),
    (r"unknown \(zz glyph", "unknown glyph"),
])
def test_inline_escapes(source, expected):
    assert text(source) == expected


def test_comments_are_removed():
    source = '.\\" a comment line\n\'\\" another\ntext \\" trailing comment\nmore \\# groff comment\n'
    assert text(source) == "text more"


def test_escaped_backslash_before_quote_is_not_a_comment():
    assert text('a \\\\" b') == 'a \\" b'


def test_continuation_and_glue():
    assert text("foo\\\nbar") == "foobar"
    assert text("GNU \\c\n.B strings\nis") == "GNU strings is"
    assert text("open\\c\n.BR (2)") == "open(2)"


def test_font_macros():
    assert text(".B bold words\n.I \"two words\" more") == "bold words two words more"
    assert text(".BR open (2),\n.IR file .name\n.BI \"int \" fd ;") == "open(2), file.name int fd;"
    assert text('.B "say ""hi"""') == 'say "hi"'


# --- structure -----------------------------------------------------------------------------------------------

def test_paragraphs_and_breaks():
    source = "first\nline\n.PP\nsecond\n.br\nthird\n\nfourth\n.sp\nfifth"
    assert text(source) == "first line\n\nsecond\nthird\n\nfourth\n\nfifth"


def test_tp_list_puts_tag_on_its_own_line():
    source = ".TP\n.B \\-a\ndo not ignore\nentries\n.TP 8\n\\fB\\-l\\fP\nlong listing\n.TQ\n.B \\-\\-long\n"
    assert text(source) == "-a\ndo not ignore entries\n-l\nlong listing\n--long"


def test_ip_bullets_and_indents():
    source = '.IP \\(bu 2\nfirst item\n.IP \\(bu\nsecond item\n.RS\n.IP "[1]" 4\nnested\n.RE'
    assert text(source) == "• first item\n• second item\n[1] nested"


def test_nofill_keeps_lines():
    source = ".nf\nint main(void)\n{\n    return 0;\n}\n.fi\nfilled\ntext\n.EX\na\nb\n.EE"
    assert text(source) == "int main(void)\n{\nreturn 0;\n}\nfilled text\na\nb"


def test_subsection_heading_is_a_line():
    assert text("intro\n.SS \"Access modes\"\nbody") == "intro\n\nAccess modes\nbody"


def test_table_keeps_cell_text():
    source = (".TS\nallbox tab(:);\nlB l\nl l.\nName:Meaning\n_\nO_RDONLY:T{\nread\\-only\n.B access\nT}\n"
              ".T&\nc s.\nO_RDWR:read/write\n.TE\nafter")
    assert text(source) == "Name Meaning\nO_RDONLY read-only access\nO_RDWR read/write\n\nafter"


def test_table_with_default_tab():
    assert text(".TS\nl l.\na\tb\nc\td\n.TE") == "a b\nc d"


def test_macro_definitions_and_ignored_requests():
    source = (".de XX\n.SH HIDDEN\nbody of macro\n..\n.ig\nignored block\n..\n.ad l\n.nh\n.ta 8n 16n\n.in +4n\n"
              ".PD 0\n.ne 5\nvisible")
    assert text(source) == "visible"


def test_conditionals_follow_nroff():
    source = (".if t .B troff-only\n.if n terminal\n.ie n \\{\\\nnroff block\n.\\}\n.el \\{\\\ntroff block\n.\\}\n"
              ".ie t x\n.el else\n.if '\\*(lq'' .B never\n.if !t yes")
    assert text(source) == "terminal nroff block else yes"


def test_strings_defined_in_page():
    lines = mp.logical_lines('.ds Pr \\fIprog\\fP\n.SH DESCRIPTION\nrun \\*(Pr now\n')
    strings = dict(mp._STRINGS)
    sections = mp.split_sections(lines, strings)
    assert mp.Renderer(strings).render(sections[0].lines) == "run prog now"


def test_links():
    source = "see\n.UR https://example.org/\nthe site\n.UE .\n.MT a@b.org\n.ME"
    assert text(source) == "see the site <https://example.org/>. <a@b.org>"


def test_chinese_lines_join_without_blanks():
    source = "列出指定文件的信息。如果\n没有指定\n.B \\-\\-sort\n，则按字母排序。\n若文件 不存在 将 创建 一个 新 文件"
    assert text(source) == "列出指定文件的信息。如果没有指定 --sort，则按字母排序。若文件不存在将创建一个新文件"


def test_mdoc_macros():
    source = (".Nm ls\n.Op Fl a\n.Ar file ...\n.Pp\nsee\n.Xr sh 1 ,\n.Dq quoted .\n.Bl -tag\n.It Fl n\nno\n.El\n"
              ".Ic @ Ns Ar server")
    assert text(source) == "ls [-a] file ...\n\nsee sh(1), “quoted”.\n\n-n no\n\n@server"


# --- NAME and headings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rendered", "page", "expected"), [
    ("ls - 列出目录内容", "ls", "列出目录内容"),
    ("open, openat, creat - open and possibly create a file", "open", "open and possibly create a file"),
    ("pgtclsh -- PostgreSQL TCLshell 客户端", "pgtclsh", "PostgreSQL TCLshell 客户端"),
    ("xpdf -Portable Document Format(PDF)文件阅读器", "xpdf", "Portable Document Format(PDF)文件阅读器"),
    ("perldata- Perl 数据类型", "perldata", "Perl 数据类型"),
    ("ld-linux.so, ld.so - dynamic linker", "ld.so", "dynamic linker"),
    ("mkdir－创建目录", "mkdir", "创建目录"),
    ("cp — 复制文件", "cp", "复制文件"),
    ("named-bootconf 转换名字服务器的配置文件", "named-bootconf", "转换名字服务器的配置文件"),
    ("bzip2, bunzip2 - 压缩软件，v0.9.5 bzcat - 解压缩至标准输出 bzip2recover - 恢复", "bzip2", "压缩软件，v0.9.5"),
    ("uuencode - 对二进制文件编码\nuudecode - 解码", "uuencode", "对二进制文件编码"),
    ("gamma - (logarithm of the) gamma function", "gamma", "(logarithm of the) gamma function"),
    ("perlfaq9 - 网络 (2003/01/31 17:36:57 )", "perlfaq9", "网络"),
    ("/etc/securetty 由 login(1) 使用", "securetty", ""),
    ("", "x", ""),
])
def test_name_summary(rendered, page, expected):
    assert mp.name_summary(rendered, page) == expected


@pytest.mark.parametrize(("heading", "kind"), [
    ("NAME", "name"), ("名称", "name"), ("NAME(名称）", "name"), ("NAME 名字", "name"), ("NAME[名称]", "name"),
    ("名称 (NAME)", "name"), ("DESCRIPTION", "description"), ("描述", "description"),
    ("描述 (DESCRIPTION)", "description"), ("DESCRIPTION(描述)", "description"), ("（描述）DESCRIPTION", "description"),
    ("说明", "description"), ("描叙", "description"), ("描述 SUMMARY", "description"),
    ("OVERVIEW 概述", "fallback"), ("介绍 INTRODUCTION", "fallback"), ("PURPOSE", "fallback"),
    ("概述", None), ("SYNOPSIS 总览", None), ("段描述 SECTION DESCRIPTIONS", None), ("使用说明", None),
])
def test_heading_kind(heading, kind):
    assert mp.heading_kind(heading) == kind


def test_spaced_heading_is_normalized():
    sections = mp.split_sections(mp.logical_lines(".SH 描 述\ntext\n.SH\nNAME\nx \\- y\n"), {})
    assert [s.heading for s in sections] == ["描述", "NAME"]


# --- pages and skip rules ------------------------------------------------------------------------------------

def page(name: str, description: str, heading: str = "DESCRIPTION") -> str:
    return f".TH X 1\n.SH NAME\n{name}\n.SH SYNOPSIS\nx\n.SH {heading}\n{description}\n.SH SEE ALSO\ny\n"


def test_parse_page_real_fixture():
    parsed = mp.parse_page((FIXTURES / "ls.1").read_text(encoding="utf-8"), "ls")
    assert parsed.query == "列出目录内容"
    assert parsed.description.startswith("列出指定“文件”（默认为当前目录）的信息。如果既没有指定 -cftuvSUX")
    assert "作者" not in parsed.description and "Stallman" not in parsed.description


def test_parse_page_mdoc_fixture():
    parsed = mp.parse_page((FIXTURES / "biff.1").read_text(encoding="utf-8"), "biff")
    assert parsed.query == "新到邮件提醒"
    assert "-n 禁止新邮件提醒。" in parsed.description and "sh(1)" in parsed.description


def test_pod2man_sh_is_a_subsection():
    source = ".de Sh\n.SS \\\\$1\n..\n.SH NAME\nperlx \\- 示例\n.SH DESCRIPTION\n第一段\n.Sh 小节\n第二段\n.SH AUTHOR\nz"
    parsed = mp.parse_page(source, "perlx")
    assert parsed.description == "第一段\n\n小节\n第二段"


@pytest.mark.parametrize(("source", "reason"), [
    (".so man2/open.2\n", "so_redirect"),
    ('.\\" comment\n.so man3/printf.3\n', "so_redirect"),
    (".TH X 1\n.SH SYNOPSIS\nx\n.SH DESCRIPTION\ntext\n", "no_name"),
    (page("x", "text").replace("x\n.SH SYN", "just words\n.SH SYN"), "no_name"),
    (".SH NAME\nx \\- y\n.SH SYNOPSIS\nz\n", "no_description"),
    (page("x \\- y", ".PP\n.\\\" nothing here"), "empty_description"),
])
def test_skip_reasons(source, reason):
    assert mp.parse_page(source, "x") == reason


def test_fallback_section_is_used_without_description():
    parsed = mp.parse_page(page("svn \\- 命令行客户端", "Subversion 是一个版本控制系统", "\"OVERVIEW 概述\""), "svn")
    assert parsed.description == "Subversion 是一个版本控制系统"


def test_check_query_in_description_and_translation():
    assert mp.check(mp.Page("Copy Memory", "memcpy() will copy memory area"), "en") == "query_in_description"
    assert mp.check(mp.Page("copy memory area", "The memcpy() function copies n bytes"), "en") is None
    assert mp.check(mp.Page("创建目录", "mkdir 创建目录。"), "zh") == "query_in_description"
    assert mp.check(mp.Page("GNU Emacs", "GNU Emacs 是一个编辑器"), "zh") == "untranslated"
    assert mp.check(mp.Page("合法的内存分配", "This macro allocates memory"), "zh") == "untranslated"


def test_page_id():
    assert mp.page_id("/usr/share/man/man1/printf.1.gz") == ("printf", "1")
    assert mp.page_id("/usr/share/man/man3/size_t.3type.gz") == ("size_t", "3type")
    assert mp.page_id("/x/ld.so.8.gz") == ("ld.so", "8")


# --- split, selection and output -----------------------------------------------------------------------------

def test_split_is_deterministic_and_about_forty_percent():
    names = [f"page{i}" for i in range(4000)]
    splits = [mp.split_of(name) for name in names]
    assert splits == [mp.split_of(name) for name in names]
    assert 0.37 < splits.count("test") / len(names) < 0.43
    # pinned values: SHA-1 based, so the split is the same on every machine and Python version
    names_ = ("ls", "open", "printf", "mkdir", "cp", "tar", "grep", "sed")
    assert [mp.split_of(n) for n in names_] == ["train", "test", "test", "train", "train", "train", "test", "test"]
    assert [mp.split_of(n, seed=7) for n in names_].count("test") == 1
    assert mp.split_of("ls", test_fraction=0.6) == "test"  # _unit(42, "split", "ls") is 0.5524...
    assert any(mp.split_of(n, seed=1) != mp.split_of(n, seed=2) for n in names[:50])


def test_select_is_seeded_and_order_independent():
    entries = [mp.Entry(f"p{i}.1", f"p{i}", f"q{i}", f"d{i}") for i in range(100)]
    first = mp.select(entries, 10, 42)
    assert first == mp.select(list(reversed(entries)), 10, 42)
    assert len(first) == 10 and first != mp.select(entries, 10, 7)
    assert len(mp.select(entries, None, 42)) == 100


def write_pages(folder: Path, pages: dict[str, str]) -> list[str]:
    paths = []
    for name, source in pages.items():
        path = folder / f"{name}.gz"
        path.write_bytes(gzip.compress(source.encode("utf-8")))
        paths.append(str(path))
    return paths


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_build_dedupes_documents_and_merges_queries(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    shared = "Copies n bytes from memory area src to memory area dest."
    paths = write_pages(src, {
        "memcpy.3": page("memcpy \\- copy memory area", shared),
        "bcopy.3": page("bcopy \\- copy byte sequence", shared),
        "memmove.3": page("memmove \\- Copy memory area", "Copies bytes; the areas may overlap."),
        "strcpy.3": page("strcpy \\- copy a string", "The strcpy() function copies a string."),
        "creat.2": ".so man2/open.2\n",
        "bad.1": page("bad \\- bad page", "this is a bad page indeed"),
    })
    (src / "link.3.gz").symlink_to(src / "strcpy.3.gz")
    paths.append(str(src / "link.3.gz"))
    out = tmp_path / "out"
    stats = mp.build_from_files(paths, "en", out)
    assert stats["skipped"] == {"symlink": 1, "so_redirect": 1, "query_in_description": 1}
    assert stats["pages_kept"] == 4 and stats["documents"] == 3
    assert stats["shared_documents"] == 1 and stats["merged_queries"] == 1
    corpus = read_jsonl(out / "corpus.jsonl")
    assert [d["text"] for d in corpus].count(shared) == 1 and all(d["title"] == "" for d in corpus)
    queries = {q["_id"]: q["text"] for q in read_jsonl(out / "queries.jsonl")}
    assert queries == {"bcopy.3": "copy byte sequence", "memcpy.3": "copy memory area",
                       "strcpy.3": "copy a string"}
    rows = [line.split("\t") for split in ("train", "test")
            for line in (out / "qrels" / f"{split}.tsv").read_text().splitlines()[1:]]
    memcpy_docs = {doc for query, doc, score in rows if query == "memcpy.3"}
    assert len(memcpy_docs) == 2  # memcpy and memmove: the same summary, two documents
    assert {score for *_, score in rows} == {"1"}
    assert all(doc == mp.doc_id(d["text"]) for d in corpus for doc in [d["_id"]])


def test_build_output_loads_with_read_beir(tmp_path):
    paths = [str(p) for p in sorted(FIXTURES.iterdir())]
    out = tmp_path / "beir"
    stats = mp.build_from_files(paths, "zh", out, test_fraction=0.5)
    assert stats["skipped"] == {"so_redirect": 1, "untranslated": 1}
    assert stats["documents"] == 2 and stats["pages_kept"] == 3  # ls and dir share one description
    header = (out / "qrels" / "test.tsv").read_text().splitlines()[0]
    assert header == "query-id\tcorpus-id\tscore"
    total = 0
    for split in ("train", "test"):
        batch = read_beir(out, split=split)
        total += len(batch.pairs)
        assert all(pair.reference_label == 2 for pair in batch.pairs)
    assert total == 3
    assert {q["_id"] for q in read_jsonl(out / "queries.jsonl")} == {"biff.1", "dir.1", "ls.1"}
    assert not list(tmp_path.glob(".beir.tmp-*"))


def test_build_is_cached_and_atomic(tmp_path, monkeypatch):
    paths = [str(p) for p in sorted(FIXTURES.iterdir())]
    versions = {"manpages-zh": "1.0"}
    monkeypatch.setattr(mp, "page_files", lambda lang: paths)
    monkeypatch.setattr(mp, "package_version", lambda package: versions[package])
    out = tmp_path / "set"
    first = mp.build("zh", out, seed=3)
    assert first["cached"] is False
    assert json.loads((out / "manifest.json").read_text())["packages"] == {"manpages-zh": "1.0"}
    assert mp.build("zh", out, seed=3)["cached"] is True
    assert mp.build("zh", out, seed=4)["cached"] is False  # other parameters
    versions["manpages-zh"] = "1.1"
    assert mp.build("zh", out, seed=4)["cached"] is False  # another package version
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temp or old folders left


def test_build_refuses_to_replace_a_foreign_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    with pytest.raises(mp.ManpagesError, match="manifest.json"):
        mp.build_from_files([str(FIXTURES / "ls.1")], "zh", tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_missing_package_names_the_package(monkeypatch):
    monkeypatch.setattr(mp, "package_files", lambda package: [f"/usr/share/man/zh_CN/man1/nope-{package}.1.gz"])
    with pytest.raises(mp.ManpagesError, match="manpages-zh"):
        mp.page_files("zh")


def test_no_dpkg_names_the_package(monkeypatch):
    def missing(*args, **kwargs):
        raise FileNotFoundError("dpkg-query")

    monkeypatch.setattr(mp.subprocess, "run", missing)
    with pytest.raises(mp.ManpagesError, match="apt-get install -y manpages-dev"):
        mp.package_version("manpages-dev")


def test_cli_reports_errors(monkeypatch, capsys):
    monkeypatch.setattr(mp, "package_version", lambda package: "1")
    monkeypatch.setattr(mp, "package_files", lambda package: [])
    assert mp.main(["--lang", "en", "--out", "unused", "--limit", "0"]) == 2
    assert "limit" in capsys.readouterr().err
    assert mp.main(["--lang", "en", "--out", "unused"]) == 2
    assert "package manpages lists 0 man pages" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not available (not a Debian system)")
def test_uninstalled_package_error():
    with pytest.raises(mp.ManpagesError, match="apt-get install -y no-such-package-relevance-studio"):
        mp.package_files("no-such-package-relevance-studio")


# --- the real pages ------------------------------------------------------------------------------------------

def _installed(package: str) -> bool:
    if shutil.which("dpkg-query") is None:
        return False
    return subprocess.run(["dpkg-query", "-W", package], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not Path("/usr/share/man/zh_CN").is_dir() or not _installed("manpages-zh")
                    or not _installed("manpages") or not _installed("manpages-dev"),
                    reason="/usr/share/man/zh_CN is absent: apt-get install -y manpages-zh manpages manpages-dev")
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_real_build_with_limit(lang, tmp_path, capsys):
    out = tmp_path / lang
    assert mp.main(["--lang", lang, "--out", str(out), "--limit", "40"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["pages_kept"] == 40 and stats["pages_seen"] > 200 and stats["skipped"]["symlink"] > 0
    queries = read_jsonl(out / "queries.jsonl")
    assert len(queries) == sum(stats["queries"].values()) <= 40
    for split in ("train", "test"):
        assert stats["queries"][split] > 0
        assert len(read_beir(out, split=split).pairs) == stats["qrels"][split]
    if lang == "zh":
        assert all(mp._HAN.search(q["text"]) for q in queries)
    docs = [d["text"] for d in read_jsonl(out / "corpus.jsonl")]
    assert not any("\\f" in d or "\n.TP" in d or "\0" in d for d in docs)
    again = mp.build(lang, out, limit=40)
    assert again["cached"] is True and again["pages_kept"] == 40


def test_cli_rejects_unknown_language():
    with pytest.raises(SystemExit):
        mp.main(["--lang", "fr", "--out", "x"])


def test_module_runs_as_script(tmp_path):
    found = subprocess.run([sys.executable, str(ROOT / "bench" / "manpages.py"), "--help"], capture_output=True,
                           text=True, check=False)
    assert found.returncode == 0 and "--test-fraction" in found.stdout
