"""``lifeline demo``: an embedded broker, the engine and a simulated city, with alerts on the console.

Starts (1) an embedded MQTT broker on 127.0.0.1 unless ``--broker`` is given, (2) the live engine
(the same runner as ``lifeline run``) with the shipped rule packs and the demo city register,
(3) the simulators as their own process (``python -m simulators run --realtime``) publishing the
``demo`` scenario, whose incidents start within the first minute, and (4) a console that prints
every alert event it receives on ``lifeline/alerts/#``. Ctrl-C stops all of it cleanly.
The engine also routes every alert to the demo city's departments (``DEMO_ROUTES``: log receivers, one JSON
line per notification in ``<state-dir>/notifications.jsonl``) through noise control and the outbox.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from lifeline import paths

COLOURS = {"blue": "\033[94m", "yellow": "\033[93m", "orange": "\033[38;5;208m", "red": "\033[91m"}
RESET = "\033[0m"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run a simulated city end to end and watch alerts arrive",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--broker", default=None, metavar="HOST:PORT",
                   help="use this MQTT broker instead of starting an embedded one")
    p.add_argument("--scenario", default="demo", help="simulator scenario name or YAML path (default: demo)")
    p.add_argument("--duration", default="2h", help="how long the simulated city runs (default: 2h)")
    p.add_argument("--state-dir", type=Path, default=Path("var/demo"),
                   help="alert store, journal and alert log of this demo (wiped at start; default: var/demo)")
    p.add_argument("--no-color", action="store_true", help="plain output")
    p.add_argument("--console", default="127.0.0.1:8080", metavar="HOST:PORT",
                   help="serve the operator console here (default: %(default)s; another free port when taken; "
                        "'off' for none)")
    p.set_defaults(func=cmd_demo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _format(ev: dict[str, Any], color: bool) -> str:
    level = str(ev.get("level", ""))
    tag = f"{level.upper():6s}"
    if color:
        tag = COLOURS.get(level, "") + tag + RESET
    value = ev.get("value")
    shown = f"{value:.4g}" if isinstance(value, int | float) else "-"
    when = time.strftime("%H:%M:%S", time.localtime(float(ev.get("ts", 0))))
    return (f"{when} {tag} {ev.get('event', ''):11s} {ev.get('rule', ''):38s} {ev.get('sensor', ''):18s} "
            f"{ev.get('district', ''):4s} value={shown:8s} {ev.get('message', '')}  -> {ev.get('owner', '')}")


class Console:
    """Subscribes to the published alerts and prints each event: what an operator would see."""

    def __init__(self, host: str, port: int, color: bool) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.color = color
        self.count = 0
        self.by_level: dict[str, int] = {}
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"lifeline-demo-console-{port}")
        self.client.on_connect = lambda c, *_: c.subscribe("lifeline/alerts/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect_async(host, port)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            ev = orjson.loads(msg.payload)
        except orjson.JSONDecodeError:
            return
        self.count += 1
        if ev.get("event") == "fired":
            lv = str(ev.get("level"))
            self.by_level[lv] = self.by_level.get(lv, 0) + 1
        print(_format(ev, self.color), flush=True)

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def cmd_demo(args: argparse.Namespace) -> int:
    from lifeline.alerting.routing import load_routing
    from lifeline.console.accounts import Accounts
    from lifeline.engine.runner import RunConfig, Runner
    from lifeline.registry import load_registry
    from lifeline.rules.loader import load_rules

    color = sys.stdout.isatty() and not args.no_color
    broker: Any = None
    if args.broker:
        host, _, port_s = args.broker.rpartition(":")
        port = int(port_s)
    else:
        from lifeline.embedded_broker import EmbeddedBroker

        host, port = "127.0.0.1", _free_port()
        broker = EmbeddedBroker(host, port)
        broker.start()
        print(f"demo: embedded MQTT broker on {host}:{port}", file=sys.stderr)
    state = args.state_dir
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    registry_path, districts_path = paths.default_registry(), paths.default_districts()
    rules = load_rules([paths.default_rules()])
    registry = load_registry(registry_path, districts_path)
    print(f"demo: {len(rules.rules)} rules, {len(registry)} sensors in {len(registry.districts)} districts; "
          f"state in {state}/", file=sys.stderr)
    routes = state / "routes.yaml"
    routes.write_text(DEMO_ROUTES.format(log=json.dumps(str(state / "notifications.jsonl"))))
    console_addr = _console_addr(args.console)
    password = ""
    if console_addr is not None:
        password = secrets.token_urlsafe(9)
        accounts = Accounts(state / "lifeline.db")
        accounts.add_user("demo", "admin", password, time.time())
        accounts.close()
    config = RunConfig(broker_host=host, broker_port=port, client_id=f"lifeline-demo-{port}",
                       rules_paths=(str(paths.default_rules()),), registry_path=str(registry_path),
                       districts_path=str(districts_path), db_path=str(state / "lifeline.db"),
                       journal_path=str(state / "journal.jsonl"), alerts_out=str(state / "alerts.jsonl"),
                       tick_interval_s=5.0, status_interval_s=30.0, routing=load_routing(routes, {}),
                       console_addr=console_addr)
    runner = Runner(config, rules, registry)
    engine_thread = threading.Thread(target=runner.run, kwargs={"install_signals": False}, name="engine",
                                     daemon=True)
    engine_thread.start()
    if console_addr is not None:
        deadline = time.monotonic() + 20
        while runner.console is None or not runner.console.port:
            if time.monotonic() > deadline or not engine_thread.is_alive():
                break
            time.sleep(0.1)
        if runner.console is not None:
            print(f"demo: operator console on http://{console_addr[0]}:{runner.console.port}/  "
                  f"(user demo, password {password})", file=sys.stderr)
    console = Console(host, port, color)
    sim_cmd = [sys.executable, "-m", "simulators", "run", "--scenario", args.scenario, "--duration",
               args.duration, "--mqtt", f"{host}:{port}", "--realtime"]
    sim = subprocess.Popen(sim_cmd, stdout=subprocess.DEVNULL)
    print(f"demo: simulated city publishing ({' '.join(sim_cmd[1:])}); alerts appear below. Ctrl-C stops.",
          file=sys.stderr)
    code = 0
    try:
        while sim.poll() is None and engine_thread.is_alive():
            time.sleep(0.2)
        if not engine_thread.is_alive():
            print("demo: the engine stopped unexpectedly", file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        print("\ndemo: stopping", file=sys.stderr)
    finally:
        if sim.poll() is None:
            sim.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                sim.wait(timeout=10)
        runner.stop_event.set()
        engine_thread.join(timeout=15)
        console.stop()
        if broker is not None:
            broker.stop()
    summary = ", ".join(f"{k} {v}" for k, v in sorted(console.by_level.items())) or "none"
    print(f"demo: {console.count} alert events received; alerts fired by level: {summary}; "
          f"store: {state / 'lifeline.db'} (try: lifeline alerts list --db {state / 'lifeline.db'})", file=sys.stderr)
    from lifeline.sinks.store import outbox_counts_at

    counts = outbox_counts_at(state / "lifeline.db")
    held = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if k != "sent") or "none"
    print(f"demo: notifications to the departments (routing: {routes}): {counts.get('sent', 0)} sent, in "
          f"{state / 'notifications.jsonl'}; not sent: {held} (try: lifeline alerts outbox --db "
          f"{state / 'lifeline.db'} --state silenced)", file=sys.stderr)
    return code


def _console_addr(text: str) -> tuple[str, int] | None:
    """The console's address: the one asked for, or a free port on the same host when it is taken."""
    if text == "off":
        return None
    host, _, port_s = text.rpartition(":")
    port = int(port_s)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            port = 0
    return host, port


# The demo city's departments, each a log receiver (one JSON line per notification) so the demo needs no
# network; deploy/routes.example.yaml is the same tree with real channels.
DEMO_ROUTES = """\
receivers:
  - {{name: control_centre, log: {{path: {log}}}}}
  - {{name: duty_chief, log: {{path: {log}}}}}
  - {{name: gas_company, log: {{path: {log}}}}}
  - {{name: water_utility, log: {{path: {log}}}}}
  - {{name: drainage_dept, log: {{path: {log}}}}}
  - {{name: bridge_authority, log: {{path: {log}}}}}
  - {{name: elevator_maintenance, log: {{path: {log}}}}}
  - {{name: venue_operator, log: {{path: {log}}}}}
  - {{name: public_security, log: {{path: {log}}}}}
route:
  receiver: control_centre
  group_by: [district, domain]
  group_wait: 10s
  routes:
    - {{match: {{owner: gas_company}}, receiver: gas_company, continue: true}}
    - {{match: {{owner: water_utility}}, receiver: water_utility, continue: true}}
    - {{match: {{owner: drainage_dept}}, receiver: drainage_dept, continue: true}}
    - {{match: {{owner: bridge_authority}}, receiver: bridge_authority, continue: true}}
    - {{match: {{owner: elevator_maintenance}}, receiver: elevator_maintenance, continue: true}}
    - {{match: {{owner: venue_operator}}, receiver: venue_operator, continue: true}}
    - {{match: {{domain: crowd, kind: safety, level: ">=orange"}}, receiver: public_security, continue: true}}
    - {{match: {{kind: safety, level: ">=orange"}}, receiver: control_centre, escalate_to: [duty_chief],
       group_by: []}}
inhibit:
  - {{name: sensor-offline, source: {{kind: nodata}}, target: {{kind: safety}}, equal: [sensor]}}
  - {{name: district-comms-outage, source: {{kind: nodata}}, target: {{kind: nodata}}, equal: [district, domain],
     min_sources: 3}}
"""
