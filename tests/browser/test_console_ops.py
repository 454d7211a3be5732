"""Silences and approvals in a real browser (headless Chromium, Playwright) against the real console: an
engineer silences an alert's sensor and rule from its detail and ends the silence; an operator sees silences but
is refused by the server when creating one; an admin approves one held public warning and rejects another. Every
act lands in the store and the audit log with who did it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Dialog, Page, expect

from lifeline.notifiers.base import Notification
from lifeline.sinks.store import AlertStore
from tests.browser.helpers import SEED_ALERTS, T0, ConsoleSite, NewPage, login, shot
from tests.browser.test_console_smoke import fetch

pytestmark = pytest.mark.browser


@pytest.fixture()
def site(console_server: ConsoleSite) -> Iterator[ConsoleSite]:
    """The seeded console, with two red public warnings held for approval (A1 to two receivers)."""
    red = SEED_ALERTS[0].to_dict()
    held = [Notification(f"k-{r}", r, "A1", 1, T0, red, "awaiting_approval", "needs approval")
            for r in ("public_sms", "public_broadcast")]
    with AlertStore(console_server.db) as store:
        store.commit_batch([], notifications=held)
    yield console_server


def answer_prompts(page: Page, text: str) -> None:
    def on_dialog(d: Dialog) -> None:
        d.accept(text)

    page.on("dialog", on_dialog)


def test_an_engineer_silences_from_the_detail_and_ends_it_and_an_operator_is_refused(
        site: ConsoleSite, new_page: NewPage) -> None:
    engineer, operator = new_page("desktop", locale="zh-CN"), new_page("laptop")
    login(engineer, site.base, "engineer")
    login(operator, site.base, "operator")

    engineer.click('#board tbody tr[data-id="A1"] td:nth-child(2)')
    engineer.click("#detail button.silence")
    form = engineer.locator("#silence-form")
    expect(form).to_be_visible()
    assert form.locator("input[name=sensor]").input_value() == "BH-GAS-C1-W02"  # prefilled from the alert
    assert form.locator("input[name=rule]").input_value() == "gas.methane.high"
    form.locator("select[name=duration]").select_option("4h")
    form.locator("input[name=reason]").fill("valve work on C1")
    before = time.time()
    form.locator("button[type=submit]").click()
    row = engineer.locator("#silences tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("sensor=BH-GAS-C1-W02, rule=gas.methane.high")
    shot(engineer, "console-silences")

    with AlertStore(site.db) as store:
        (w,) = store.silences(at=time.time())
        assert w.created_by == "engineer" and w.reason == "valve work on C1"
        assert abs(w.ends - w.starts - 4 * 3600) < 1 and before - 1 <= w.starts <= time.time() + 1
        assert w.match.to_dict() == {"sensor": "BH-GAS-C1-W02", "rule": "gas.methane.high"}

    # the operator sees the silence, has neither the form nor the buttons, and the server refuses the request
    operator.click("#ops-toggle")
    expect(operator.locator("#silences tbody tr")).to_have_count(1)
    assert operator.locator("#silence-form").count() == 0 and operator.locator("#silences button").count() == 0
    csrf = fetch(operator, "GET", "/api/me")[1]["csrf"]
    status, doc = fetch(operator, "POST", "/api/silences",
                        {"match": {"domain": "gas"}, "duration": "1h", "reason": "try"}, csrf)
    assert status == 403 and "needs engineer" in doc["error"]

    answer_prompts(engineer, "valve work done")
    engineer.click(f'#silences tr[data-silence="{w.id}"] button.expire')
    expect(engineer.locator("#silences")).to_have_count(0)
    with AlertStore(site.db) as store:
        assert store.silences(at=time.time() + 1) == []
        (ended,) = store.silences(include_expired=True)
        assert ended.ends <= time.time()
    with AlertStore(site.db) as store:
        acts = [(actor, action) for _, actor, action, _, _ in store.audit_log()]
    assert ("engineer", "silence.add") in acts and ("engineer", "silence.expire") in acts
    assert ("operator", "silence.add") not in acts


def test_an_admin_approves_one_held_warning_and_rejects_the_other(site: ConsoleSite, new_page: NewPage) -> None:
    admin, operator = new_page("desktop"), new_page("laptop")
    login(admin, site.base, "admin")
    login(operator, site.base, "operator")
    # the header tells an admin that warnings wait, before they open the panel
    expect(admin.locator("#ops-toggle.attention")).to_contain_text("(2)")
    admin.click("#ops-toggle")
    expect(admin.locator("#approvals tbody tr")).to_have_count(2)
    shot(admin, "console-approvals")
    operator.click("#ops-toggle")
    expect(operator.locator("#approvals tbody tr")).to_have_count(2)
    assert operator.locator("#approvals button").count() == 0  # an operator sees them and cannot decide

    answer_prompts(admin, "confirmed on site by the duty chief")
    admin.click('#approvals tr[data-key="k-public_sms"] button.approve')
    expect(admin.locator("#approvals tbody tr")).to_have_count(1)
    admin.click('#approvals tr[data-key="k-public_broadcast"] button.reject')
    expect(admin.locator("#approvals")).to_have_count(0)
    admin.click("#ops-toggle")  # back to the board: nothing waits any more
    expect(admin.locator("#ops-toggle")).not_to_have_class(re.compile(r"\battention\b"))
    expect(admin.locator("#ops-toggle")).not_to_contain_text("(")

    with AlertStore(site.db) as store:
        states = {o.key: (o.state, o.note) for o in store.outbox_of("A1")}
    assert states["k-public_sms"][0] == "pending" and "admin" in states["k-public_sms"][1]
    assert states["k-public_broadcast"][0] == "rejected" and "admin" in states["k-public_broadcast"][1]
    with AlertStore(site.db) as store:
        acts = [(actor, action, obj) for _, actor, action, obj, _ in store.audit_log()]
    assert ("admin", "outbox.approve", "k-public_sms") in acts
    assert ("admin", "outbox.reject", "k-public_broadcast") in acts
