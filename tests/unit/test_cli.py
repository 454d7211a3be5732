"""The ``lifeline`` command line: help everywhere, rules check exit codes, alerts list/ack/resolve."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from lifeline.cli import COMMANDS, main
from lifeline.engine import Engine
from lifeline.rules.model import RuleSet
from lifeline.sinks.store import AlertStore
from lifeline.testing import reading, registry_of, sensors, threshold_rule

T0 = 1_764_403_200.0
INVALID = Path(__file__).parent / "testdata" / "rules" / "invalid"


@pytest.mark.parametrize("command", COMMANDS)
def test_cli_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    """``lifeline <command> --help`` prints usage and exits 0."""
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    assert f"lifeline {command}" in capsys.readouterr().out


def test_cli_rules_check_shipped_packs_ok(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped packs check clean (exit 0)."""
    assert main(["rules", "check", str(Path(__file__).parents[2] / "rules")]) == 0


def test_cli_rules_check_reports_every_problem_with_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid pack: exit 1 and exactly the fixture's expected lines on stdout."""
    case = INVALID / "bad_level.yaml"
    assert main(["rules", "check", str(case)]) == 1
    expected = (INVALID / "bad_level.expected").read_text().splitlines()
    got = capsys.readouterr().out.splitlines()
    assert [line.split(":", 1)[1] for line in got] == [line.split(":", 1)[1] for line in expected]


def _store_with_alert(path: Path) -> str:
    eng = Engine(RuleSet((threshold_rule(),)), registry_of(sensors("gas", 1)))
    events = eng.process([reading("gas-0000", 30.0, T0)]).events
    with AlertStore(path) as store:
        store.commit_batch(events, snapshot=eng.snapshot(), journal_offset=0, now=T0)
    return events[0].id


def test_cli_alerts_list_ack_resolve(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An operator lists the open alert, acknowledges and resolves it; the history keeps who and why."""
    db = tmp_path / "a.db"
    alert = _store_with_alert(db)
    assert main(["alerts", "--db", str(db), "list", "--json"]) == 0
    rows = [orjson.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["id"], r["level"], r["state"]) for r in rows] == [(alert, "orange", "firing")]
    assert main(["alerts", "--db", str(db), "ack", alert[:8], "--by", "operator-7"]) == 0
    assert main(["alerts", "--db", str(db), "resolve", alert, "--by", "operator-7", "--reason", "valve closed"]) == 0
    capsys.readouterr()
    with AlertStore(db) as store:
        history = store.history(alert)
        row = store.get(alert)
    assert row is not None and row.state == "resolved"
    assert [(h.event, h.actor) for h in history][-2:] == [("acknowledged", "operator-7"), ("resolved", "operator-7")]
    assert history[-1].reason == "valve closed"


def test_cli_alerts_unknown_id_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Acknowledging an id that does not exist exits non-zero with a message naming the id."""
    db = tmp_path / "a.db"
    _store_with_alert(db)
    code = main(["alerts", "--db", str(db), "ack", "ffffffffffff"])
    assert code != 0
    assert "ffffffffffff" in capsys.readouterr().err


def test_cli_run_refuses_a_retry_cap_below_the_first_retry(capsys: pytest.CaptureFixture[str]) -> None:
    """``--notify-retry-max`` below the dispatcher's first 2-s wait is refused before anything starts."""
    assert main(["run", "--notify-retry-max", "1s"]) == 1
    assert "--notify-retry-max: must be at least the first retry's 2 s (got '1s')" in capsys.readouterr().err


def test_simulate_passes_every_argument_to_the_simulators() -> None:
    """`lifeline simulate --scenario demo ...` as the docs write it (argparse alone refused the first option)."""
    from lifeline.cli import build_parser, parse

    parser = build_parser()
    ns = parse(parser, ["simulate", "--scenario", "demo", "--mqtt", "127.0.0.1:1883"])
    assert ns.command == "simulate" and ns.sim_args == ["--scenario", "demo", "--mqtt", "127.0.0.1:1883"]
    ns = parse(parser, ["--log-level", "INFO", "simulate", "--", "--help"])
    assert ns.log_level == "INFO" and ns.sim_args == ["--", "--help"]
    assert parse(parser, ["backtest", "--input", "x.jsonl"]).command == "backtest"
