"""The `syndicate` command, driven with click's CliRunner (and once as a real `python -m syndicate`)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicate.cli import main

ROOT = Path(__file__).resolve().parent.parent
# The demo holds one statement under embargo until this time; after it, that one is published too.
EMBARGO = datetime(2027, 1, 15, 7, 0, tzinfo=UTC)
SCHEDULED = 1 if datetime.now(UTC) < EMBARGO else 0


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the project's own demo: config.toml, statements/ and templates/."""
    for name in ("statements", "templates"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    return tmp_path


def run(demo: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["--config", str(demo / "config.toml"), *args], env=env)
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_check_on_the_demo_is_clean_and_changes_nothing(demo):
    code, out, _ = run(demo, "check")
    assert code == 0
    assert "ok: 6 statements" in out
    assert not (demo / "syndicate.db").exists(), "check touches no database"
    assert not (demo / "feeds").exists()


def test_check_reports_every_problem_with_file_and_line_and_fails(demo):
    (demo / "statements" / "broken.md").write_text('+++\ntitle = "No date"\n+++\nBody\n', encoding="utf-8")
    (demo / "statements" / "typo.md").write_text(
        '+++\ntitle = "Typo"\npublished = 2013-01-01\nauther = "x"\n+++\nBody\n', encoding="utf-8"
    )
    code, _, err = run(demo, "check")
    assert code == 1
    assert "broken.md" in err
    assert "published is required" in err
    assert "typo.md:4: warning: unknown front-matter key 'auther' (did you mean 'author'?)" in err
    assert "1 error(s), 1 warning(s)" in err


def test_once_runs_the_whole_tick_and_a_second_once_writes_nothing(demo):
    code, out, _ = run(demo, "once")
    assert code == 0
    assert f"{6 - SCHEDULED} published" in out
    assert f"{SCHEDULED} newly scheduled" in out
    assert (demo / "feeds" / "atom.xml").exists()
    code, out, _ = run(demo, "once")
    assert "0 published" in out
    assert "0 feed files written" in out


def test_status_json_has_stable_keys(demo):
    run(demo, "once")
    code, out, _ = run(demo, "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert set(status) >= {
        "statements",
        "last_tick",
        "next_embargo",
        "pings_pending",
        "subscribers",
        "deliveries",
        "backlog",
        "partners",
        "nodes",
    }
    assert status["statements"] == {"draft": 0, "scheduled": SCHEDULED, "published": 6 - SCHEDULED, "retracted": 0}
    assert (status["next_embargo"] or {}).get("statement") == ("annual-report-2026" if SCHEDULED else None)
    code, out, _ = run(demo, "status")
    assert f"statements: {6 - SCHEDULED} published, {SCHEDULED} scheduled" in out


def test_a_bad_config_stops_with_the_key_named_and_no_traceback(demo):
    config = demo / "config.toml"
    config.write_text(config.read_text(encoding="utf-8").replace("items = 50", "items = 0"), encoding="utf-8")
    code, _, err = run(demo, "build")
    assert code == 1
    assert "config: feeds.items: wanted an integer between 1 and 1000, got 0" in err
    assert "Traceback" not in err


def test_the_config_can_be_named_by_the_environment(demo):
    env = {"SYNDICATE_CONFIG": str(demo / "config.toml")}
    assert CliRunner().invoke(main, ["build"], env=env).exit_code == 0
    result = CliRunner().invoke(main, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["last_tick"] is None  # a build is no tick
    assert (demo / "syndicate.db").is_file()


def test_python_dash_m_syndicate_is_the_same_command(demo):
    done = subprocess.run([sys.executable, "-m", "syndicate", "--help"], capture_output=True, text=True, check=True)
    for command in (
        "check",
        "build",
        "once",
        "run",
        "status",
        "serve",
        "subscribers",
        "deliveries",
        "partners",
        "preview",
    ):
        assert command in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "syndicate", "run", "--help"], capture_output=True, text=True, check=True
    )
    assert "--role [all|scheduler|worker]" in done.stdout


def test_check_names_settings_whose_secrets_are_missing_or_whose_links_are_not_https(demo, monkeypatch):
    config = demo / "config.toml"
    text = config.read_text(encoding="utf-8")
    text += '\n[web]\nbase_url = "http://news.example.org"\n\n[[partners]]\nname = "caucasus-news"\nurl = "https://partner.example/hook"\nsecret_env = "CHECK_PARTNER_SECRET"\n'
    config.write_text(text, encoding="utf-8")
    monkeypatch.delenv("CHECK_PARTNER_SECRET", raising=False)
    code, _, err = run(demo, "check")
    assert code == 1
    assert (
        "partner caucasus-news: config: partners[0].secret_env: environment variable CHECK_PARTNER_SECRET is not set"
        in err
    )
    assert "web.base_url: http://news.example.org is not https" in err
    monkeypatch.setenv("CHECK_PARTNER_SECRET", "not-whsec")
    _, _, err = run(demo, "check")
    assert "does not start with whsec_" in err


def test_check_refuses_secrets_too_short_to_resist_guessing(demo):
    config = demo / "config.toml"
    partner = '\n[[partners]]\nname = "wire"\nurl = "https://wire.example.org/hook"\nsecret_env = "WIRE_SECRET"\n'
    config.write_text(config.read_text(encoding="utf-8") + partner, encoding="utf-8")
    weak = {"SYNDICATE_SECRET": "s" * 31, "WIRE_SECRET": "whsec_" + base64.b64encode(b"k" * 23).decode()}
    code, _, err = run(demo, "check", env=weak)
    assert code == 1
    assert "web.secret_env: the secret in SYNDICATE_SECRET is 31 bytes; use at least 32 random bytes" in err
    assert "partners[0].secret_env: partner wire's key in WIRE_SECRET is 23 bytes; use at least 24" in err
    assert "s" * 31 not in err
    strong = {"SYNDICATE_SECRET": "s" * 32, "WIRE_SECRET": "whsec_" + base64.b64encode(b"k" * 24).decode()}
    code, _, err = run(demo, "check", env=strong)
    assert "secret" not in err.lower(), err
