"""The MQTT source in a process of its own: paho's network loop on the other core.

``MqttSource`` runs paho's loop in a thread. paho parses every packet in Python, so that thread and
the runner's decode + engine compete for one interpreter lock: on a 2-core machine the runner then
uses about one core in all (``benchmarks/e2e_throughput.py``). ``ProcessMqttSource`` runs the same
``MqttSource`` in a child process (``spawn``: no fork of a threaded parent) and talks to it over two
pipes, so receiving and evaluating overlap. Same interface, same guarantees:

* messages reach ``get_batch`` in the order the broker sent them (one pipe, one writer);
* QoS 1 acknowledgements go back in the order ``ack`` is called, after the runner's commit, and the
  child sends them as it does in-process (a batch of PUBACKs in one write);
* ``publish`` hands the message to the child, which publishes it with QoS 1 (``True`` = queued; a
  refusal by paho is logged and counted in the child, as in-process);
* when the parent dies (even by SIGKILL) its pipe ends close, the child sees end-of-file and exits: the
  broker keeps the persistent session and redelivers whatever was not acknowledged.

Receive times come from the child's system clock: a runner with an injected (test) clock uses the
in-process source instead.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from typing import Any

from lifeline.sources.mqtt import Message, MqttSettings, MqttSource, not_subscribed

log = logging.getLogger(__name__)

_FORWARD_MAX = 5000  # messages per pipe write from the child (one pickle, one write)
_STATUS_EVERY_S = 0.2  # how often the child reports its link state when idle
_RESPAWN_S = 2.0  # least time between two starts of the child


class ProcessMqttSource:
    """``MqttSource``'s interface, with the MQTT client in a child process."""

    def __init__(self, settings: MqttSettings) -> None:
        self.settings = settings
        self._buf: deque[Message] = deque()
        self._proc: Any = None
        self._rx: Connection | None = None  # child -> parent: messages and status
        self._tx: Connection | None = None  # parent -> child: acks, publishes, stop
        self._connected = False
        self._subscribed = False
        self.last_error = ""
        self._spawned_at = 0.0
        self.spawns = 0  # child processes started (more than one: a child died and was replaced)

    # ---- lifecycle --------------------------------------------------------------------------
    def start(self, wait_s: float | None = 10.0) -> None:
        self._spawn()
        if wait_s is not None and not self.wait_subscribed(wait_s):
            self.stop()
            raise not_subscribed(self.settings, wait_s, self.last_error)

    def _spawn(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        rx, child_tx = ctx.Pipe(duplex=False)
        child_rx, tx = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_child_main, args=(self.settings, child_tx, child_rx),
                                 name=f"lifeline-mqtt-{self.settings.client_id}", daemon=True)
        self._proc.start()
        child_tx.close()  # only the child holds these ends: its death is our end-of-file, and ours its
        child_rx.close()
        self._rx, self._tx = rx, tx
        self._spawned_at = time.monotonic()
        self.spawns += 1

    def _respawn_if_dead(self) -> None:
        """A child that died on its own (killed, crashed) is replaced, at most once every few seconds. Its
        unacknowledged messages come again on the new connection (persistent session, same packet ids),
        so acknowledging what the runner still holds stays correct; what it re-reads is dead-lettered as
        a duplicate by the engine."""
        if self._rx is not None or self._proc is None or time.monotonic() - self._spawned_at < _RESPAWN_S:
            return
        log.warning("restarting the MQTT child process (the last one exited with code %s)", self._proc.exitcode)
        self._proc.join(1.0)
        if self._tx is not None:
            self._tx.close()
        self._spawn()

    def wait_subscribed(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._subscribed:
            left = deadline - time.monotonic()
            if left <= 0 or not self._drain(left):
                return self._subscribed
        return True

    @property
    def connected(self) -> bool:
        return self._connected

    def stop(self) -> None:
        proc, tx = self._proc, self._tx
        if proc is None:
            return
        try:
            if tx is not None:
                tx.send(("stop",))
        except OSError:
            pass  # the child is gone already
        proc.join(10.0)
        if proc.is_alive():
            log.warning("MQTT child process %d did not stop within 10 s; terminating it", proc.pid)
            proc.terminate()
            proc.join(5.0)
        for conn in (self._rx, self._tx):
            if conn is not None:
                conn.close()
        self._proc = self._rx = self._tx = None
        self._connected = self._subscribed = False

    # ---- consumer side ----------------------------------------------------------------------
    def pending(self) -> int:
        """Messages received here and not yet handed out (the child's own backlog is not counted)."""
        return len(self._buf)

    def get_batch(self, max_n: int, wait_s: float, linger_s: float = 0.0) -> list[Message]:
        self._respawn_if_dead()
        buf = self._buf
        if not buf:
            deadline = time.monotonic() + wait_s
            while not buf:
                left = deadline - time.monotonic()
                if left <= 0 or not self._drain(left):
                    break
        else:
            self._drain(0.0)
        if buf and linger_s > 0 and len(buf) < max_n:
            deadline = time.monotonic() + linger_s
            while len(buf) < max_n:
                left = deadline - time.monotonic()
                if left <= 0 or not self._drain(left):
                    break
        popleft = buf.popleft
        return [popleft() for _ in range(min(max_n, len(buf)))]

    def _drain(self, wait_s: float) -> bool:
        """Read what the child has sent (waiting up to ``wait_s`` for the first item); False if nothing came."""
        rx = self._rx
        if rx is None:
            return False
        got = False
        try:
            while rx.poll(wait_s if not got else 0.0):
                item = rx.recv()
                got = True
                if item[0] == "msgs":
                    self._buf.extend(item[1])
                else:  # ("status", connected, subscribed, last_error)
                    _, self._connected, self._subscribed, self.last_error = item
        except (EOFError, OSError):
            log.error("the MQTT child process exited; starting a new one")
            self._connected = self._subscribed = False
            self.last_error = "MQTT child process exited"
            rx.close()
            self._rx = None
        return got

    def ack(self, messages: list[Message]) -> None:
        """To the child, in call order. If it has died, the broker redelivers these (unacknowledged) on the
        next child's connection: a duplicate the engine dead-letters, never a loss."""
        if messages:
            self._send(("ack", [(m.mid, m.qos) for m in messages]))

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Hand to the child (True = queued); paho's refusals are logged and counted there."""
        return self._send(("pub", topic, payload, qos))

    def _send(self, item: tuple[Any, ...]) -> bool:
        tx = self._tx
        if tx is None:
            return False
        try:
            tx.send(item)
        except OSError:  # the child is gone (broken pipe): _drain notices, get_batch replaces it
            return False
        return True


# ---- the child process ------------------------------------------------------------------------------
def _child_main(settings: MqttSettings, tx: Connection, rx: Connection) -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the parent finishes its batch,
    # acknowledges it through us and then says stop; we end on that, or on end-of-file if it dies.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s [mqtt child]: %(message)s")
    source = MqttSource(settings)
    stop = threading.Event()
    send_lock = threading.Lock()  # the forwarder and the status reports share the pipe to the parent

    def send(item: Any) -> None:
        with send_lock:
            tx.send(item)

    def commands() -> None:
        try:
            while True:
                cmd = rx.recv()
                if cmd[0] == "ack":
                    source.ack([Message("", b"", mid, qos, 0.0) for mid, qos in cmd[1]])
                elif cmd[0] == "pub":
                    source.publish(cmd[1], cmd[2], cmd[3])
                else:
                    break
        except (EOFError, OSError):
            log.info("parent gone: stopping")
        stop.set()

    reader = threading.Thread(target=commands, name="commands", daemon=True)
    reader.start()
    source.start(wait_s=None)
    status: tuple[Any, ...] = ()
    try:
        while not stop.is_set():
            batch = source.get_batch(_FORWARD_MAX, _STATUS_EVERY_S)
            now = ("status", source.connected, source.wait_subscribed(0), source.last_error)
            if now != status:
                send(now)
                status = now
            if batch:
                send(("msgs", batch))
    except (BrokenPipeError, EOFError, OSError):
        log.info("parent gone: stopping")
    finally:
        try:
            source.stop()
        finally:
            os._exit(0)  # no atexit or multiprocessing clean-up of a parent that may be gone
