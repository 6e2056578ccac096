"""The demo folder salted with every bad statement the hardening issue names, driven through the CLI.

``check`` names each bad file (and line, where there is one) and exits
non-zero; ``build`` and ``once`` exit 0 and publish every good statement in
feeds a strict parser reads; once the bad files are gone, the next tick is
clean. Bounded: every file is small but the nested brackets (50 KB), and
nothing waits on the FIFO.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from lxml import etree

from syndicate.cli import main

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parent.parent
HEAD = '+++\ntitle = "{title}"\npublished = 2013-09-20T10:00:00+03:00\n+++\n\n'

BAD = {
    "nul-title.md": ('+++\ntitle = "Cat\\u0000"\npublished = 2013-09-20T10:00:00+03:00\n+++\n\nBody.\n', 2),
    "control-category.md": (
        '+++\ntitle = "Control"\npublished = 2013-09-20T10:00:00+03:00\ncategories = ["X\\u0002Y"]\n+++\n\nBody.\n',
        4,
    ),
    "non-character.md": ('+++\ntitle = "Non\\uFFFEcharacter"\npublished = 2013-09-20T10:00:00+03:00\n+++\n\nB.\n', 2),
    "surrogate.md": ('---\ntitle: "Lone \\ud800"\npublished: 2013-09-20T10:00:00+03:00\n---\n\nBody.\n', 2),
    "entity.html": (HEAD.format(title="Entity") + "<p>One &#1; two</p>\n", 6),
    "brackets.md": (HEAD.format(title="Brackets") + "[" * 50_000 + "\n", None),
    "hostile.md": (HEAD.format(title="Hostile") + '<script>alert(1)</script><a href="javascript:x()">x</a>\n', None),
}


def run(root: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", str(root / "config.toml"), *args])
    return result.exit_code, result.output


@pytest.fixture
def salted(tmp_path: Path) -> Path:
    for name in ("statements", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    folder = tmp_path / "statements" / "salt"
    folder.mkdir()
    for name, (text, _) in BAD.items():
        (folder / name).write_text(text, encoding="utf-8")
    (tmp_path / "secret.md").write_text(HEAD.format(title="Private") + "Not for publication.\n", encoding="utf-8")
    (folder / "outside-link.md").symlink_to(tmp_path / "secret.md")
    (folder / "zero.md").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.md")
    (folder / "huge.md").write_bytes(HEAD.format(title="Huge").encode() + b"x" * 1_100_000)
    saved = time.time_ns() - 10**9  # saved a moment ago, not still being written
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.name != "pipe.md":
            os.utime(path, ns=(saved, saved))
    return tmp_path


def published_titles(root: Path) -> set[str]:
    """Every entry title of every Atom and RSS feed, each file parsed strictly first."""
    titles: set[str] = set()
    for path in (root / "feeds").rglob("*.xml"):
        etree.fromstring(path.read_bytes())
        parsed = feedparser.parse(path.read_bytes())
        assert parsed.bozo == 0, path
        titles |= {e.title for e in parsed.entries}
    return titles


def test_a_salted_folder_is_reported_by_check_and_published_around(salted):
    code, output = run(salted, "check")
    assert code == 1
    for name, (_, line) in BAD.items():
        if line is not None:
            assert f"statements/salt/{name}:{line}:" in output, name
    for name in ("outside-link.md", "zero.md"):
        assert f"salt/{name}: error: is a link to outside the statements folder; not read" in output
    assert "salt/pipe.md: error: is not a regular file; not read" in output
    assert "salt/huge.md: error: file is" in output and "over source.max_bytes" in output

    code, output = run(salted, "build")
    assert code == 0, output
    code, output = run(salted, "once")
    assert code == 0, output
    titles = published_titles(salted)
    good = {"UN Overturned Campaign Initiated by the Russia against IMKANDER", "Cat", "Control", "Noncharacter"}
    assert good <= titles
    assert {"Lone", "Entity", "Brackets", "Hostile"} <= titles
    assert "Private" not in titles and "Huge" not in titles
    feeds = "".join(p.read_text(encoding="utf-8") for p in (salted / "feeds").rglob("*.xml"))
    assert "alert(1)" not in feeds and "javascript:" not in feeds

    shutil.rmtree(salted / "statements" / "salt")
    code, output = run(salted, "once")
    assert code == 0, output
    assert "problem" not in output
    assert run(salted, "check")[0] == 0 or "web.base_url" in run(salted, "check")[1]
