"""Progress output: on for an interactive stderr only, never in CI."""

from __future__ import annotations

from compress.progress import Reporter, progress_wanted


def test_ci_turns_progress_off(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert progress_wanted(None) is False
    assert progress_wanted(True) is True


def test_non_tty_has_no_progress(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    assert progress_wanted(None) is False  # pytest captures stderr: not a terminal


def test_notes_are_kept_when_progress_is_off(capsys):
    reporter = Reporter(enabled=False)
    reporter.note("dynamo failed")
    reporter.stage("exporting")
    with reporter.bar("training", 3) as advance:
        advance(status="epoch 1")
    assert reporter.notes == ["dynamo failed"]
    assert capsys.readouterr().err == ""
