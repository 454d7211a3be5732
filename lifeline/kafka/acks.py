"""Which MQTT messages may be acknowledged now: the bridge's in-flight window, pure (no I/O, no clock).

A QoS 1 message is acknowledged to the broker only once Kafka has acknowledged its write. Kafka confirms
writes per partition, so confirmations come back out of receive order; MQTT wants PUBACKs in the order the
PUBLISHes arrived ([MQTT-4.6.0-2], 3.1.1 and 5; Mosquitto itself accepts any order). The window keeps the
messages in receive order and hands out the acknowledgeable head: every message up to the first one still
waiting for Kafka.

A message received on an earlier connection is never acknowledged on a later one: after a reconnect the
broker resends what we had not acknowledged (same packet ids), and may reuse an id we acknowledge for a new
message. So ``new_connection`` makes the slots in hand stale: they still count as in flight (their records
are in the producer's memory) until Kafka answers, but their ids are dropped, and the resent copies are
forwarded again (at-least-once: a duplicate in Kafka, never a loss).
"""

from __future__ import annotations

from collections import deque

WAITING, WRITTEN, FAILED = 0, 1, 2


class Slot:
    """One message in flight: its packet id, the connection it came on, its state."""

    __slots__ = ("conn", "mid", "state")

    def __init__(self, mid: int, conn: int) -> None:
        self.mid, self.conn, self.state = mid, conn, WAITING


class AckWindow:
    """Messages received and not yet acknowledged, in receive order."""

    def __init__(self) -> None:
        self._q: deque[Slot] = deque()
        self._conn = 0
        self.stale_dropped = 0  # slots of an earlier connection, never acknowledged (the broker resends them)
        self.failed_dropped = 0  # slots whose write failed for good, never acknowledged

    def __len__(self) -> int:
        """Messages in flight (received, and Kafka has not answered for all before them)."""
        return len(self._q)

    def add(self, mid: int) -> Slot:
        slot = Slot(mid, self._conn)
        self._q.append(slot)
        return slot

    @staticmethod
    def written(slot: Slot) -> None:
        """Kafka acknowledged this message's write."""
        slot.state = WRITTEN

    @staticmethod
    def failed(slot: Slot) -> None:
        """This message could not be written anywhere: never acknowledge it (the broker keeps it)."""
        slot.state = FAILED

    def new_connection(self) -> None:
        self._conn += 1

    def ready(self) -> list[int]:
        """Pop the answered head of the window; return the packet ids to acknowledge now, in receive order."""
        q, conn, out = self._q, self._conn, []
        while q and q[0].state != WAITING:
            slot = q.popleft()
            if slot.conn != conn:
                self.stale_dropped += 1
            elif slot.state == FAILED:
                self.failed_dropped += 1
            else:
                out.append(slot.mid)
        return out
