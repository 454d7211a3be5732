"""The routing tree: Alertmanager's first-match-with-continue semantics, and every problem with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeline.alerting.routing import RoutingError, load_routing
from lifeline.model import AlertEvent, AlertKind, AlertState, EventKind, Level

TREE = """\
receivers:
  - name: control_centre
    webhook: {url: "http://127.0.0.1:9000/cc", secret_env: CC_SECRET}
  - name: gas_company
    webhook: {url: "http://127.0.0.1:9000/gas", timeout: 5s}
  - name: bridge_authority
    webhook: {url: "http://127.0.0.1:9000/bridge"}
  - name: metro
    webhook: {url: "http://127.0.0.1:9000/metro"}
route:
  receiver: control_centre
  routes:
    - match: {domain: gas}
      receiver: gas_company
      continue: true
      routes:
        - match: {kind: health}         # sensor faults: the gas company only
    - match: {domain: gas, level: ">=orange"}
    - match: {rule: "bridge.*"}
      receiver: bridge_authority
    - match: {domain: crowd, labels: {kind: metro}}
      receiver: metro
"""


def _e(domain: str, level: Level, rule: str = "x.y", kind: AlertKind = AlertKind.SAFETY) -> AlertEvent:
    return AlertEvent(id="a", seq=1, rule=rule, kind=kind, subject="S", sensor="S", domain=domain, district="LY",
                      level=level, state=AlertState.FIRING, event=EventKind.FIRED, started=0.0, ts=0.0, value=None,
                      message="m")


def _load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> object:
    p = tmp_path / "routes.yaml"
    p.write_text(text)
    return load_routing(p, env={"CC_SECRET": "x"} if env is None else env)


def test_first_match_continue_inherit_and_fall_back_to_the_parent(tmp_path: Path) -> None:
    r = _load(tmp_path, TREE)
    f = r.receivers_for  # type: ignore[attr-defined]
    assert f(_e("gas", Level.YELLOW)) == ["gas_company"]  # continue, but no later sibling matches a yellow
    assert f(_e("gas", Level.RED)) == ["gas_company", "control_centre"]  # continue: the >=orange sibling too
    assert f(_e("gas", Level.RED, kind=AlertKind.HEALTH)) == ["gas_company", "control_centre"]
    assert f(_e("gas", Level.BLUE, kind=AlertKind.HEALTH)) == ["gas_company"]  # the child inherits gas_company
    assert f(_e("bridge", Level.BLUE, rule="bridge.f1.drop")) == ["bridge_authority"]
    assert f(_e("water", Level.RED)) == ["control_centre"]  # no child takes it: the root's receiver
    assert f(_e("crowd", Level.RED), {"kind": "metro"}) == ["metro"]
    assert f(_e("crowd", Level.RED), {"kind": "stadium"}) == ["control_centre"]
    assert r.receivers["control_centre"].secret == "x" and r.receivers["gas_company"].timeout_s == 5.0  # type: ignore[attr-defined]


def test_every_problem_is_reported_with_its_place(tmp_path: Path) -> None:
    bad = TREE.replace("receiver: bridge_authority", "receiver: bridge_authoritee").replace(
        'level: ">=orange"', 'level: ">=amber"').replace("continue: true", "contnue: true")
    with pytest.raises(RoutingError) as err:
        _load(tmp_path, bad, env={})
    lines = str(err.value).splitlines()
    assert any(":3:60:" in x and "CC_SECRET" in x and "not set" in x for x in lines)
    assert any(":15:7:" in x and "unknown key 'contnue' (did you mean 'continue'?)" in x for x in lines)
    assert any(":18:35:" in x and "unknown level 'amber'" in x for x in lines)
    assert any(":20:17:" in x and "unknown receiver 'bridge_authoritee' (did you mean 'bridge_authority'?)" in x
               for x in lines)
    assert len(lines) == 4


def test_the_root_needs_a_receiver_and_takes_no_match(tmp_path: Path) -> None:
    with pytest.raises(RoutingError) as err:
        _load(tmp_path, "receivers:\n  - name: a\n    webhook: {url: 'ftp://x'}\nroute:\n  match: {domain: gas}\n")
    text = str(err.value)
    assert "route: missing required key 'receiver'" in text and "url: expected http(s)://" in text


def test_email_receivers_are_checked_too(tmp_path: Path) -> None:
    text = """\
receivers:
  - name: duty
    email: {host: smtp.example, from: lifeline, to: [], starttls: false, username_env: U, lang: fr}
route:
  receiver: duty
"""
    with pytest.raises(RoutingError) as err:
        _load(tmp_path, text, env={"U": "user"})
    msg = str(err.value)
    assert "email.to: expected a list of names (got an empty list)" in msg


def test_an_email_receiver_is_built_with_its_credentials(tmp_path: Path) -> None:
    text = """\
receivers:
  - name: duty
    email: {host: smtp.example, port: 465, from: lifeline@city.example, to: [a@gas.example, b@gas.example],
            username_env: U, password_env: P, lang: en, timeout: 3s}
route:
  receiver: duty
"""
    r = _load(tmp_path, text, env={"U": "user", "P": "pw"})
    s = r.receivers["duty"]  # type: ignore[attr-defined]
    assert (s.host, s.port, s.to, s.username, s.password, s.lang, s.timeout_s, s.starttls) == (
        "smtp.example", 465, ("a@gas.example", "b@gas.example"), "user", "pw", "en", 3.0, True)
    bad = text.replace("lang: en", "lang: fr").replace("from: lifeline@city.example", "from: lifeline")
    with pytest.raises(RoutingError) as err:
        _load(tmp_path, bad, env={"U": "user", "P": "pw"})
    assert "email.lang: must be one of zh, en (got 'fr')" in str(err.value)
    assert "email.from: 'lifeline' is not an address" in str(err.value)
