"""E-mail: one message per alert transition over SMTP, with STARTTLS, rendered in Chinese or English.

Subject and text from ``lifeline.notifiers.templates``. The ``Message-ID`` is derived from the
notification's idempotency key (``<key@lifeline>``) and the key is also in ``X-Lifeline-Key``: a mail
system that sees the same message twice (after a crash between sending and recording) can drop it.
STARTTLS is on by default and then required (a server that does not offer it is an error, never a silent
downgrade to clear text); credentials come from environment variables. A 5xx answer (recipient or sender
refused) is a permanent failure; a 4xx, a refused connection or a timeout is retried by the outbox.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate

from lifeline.notifiers.base import DeliveryError, Notification, Notifier, channel_problems, require_valid
from lifeline.notifiers.templates import render


@dataclass(frozen=True)
class EmailSettings:
    host: str
    port: int = 587
    sender: str = "lifeline@localhost"
    to: tuple[str, ...] = ()
    starttls: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    lang: str = "zh"
    console_url: str = ""
    timeout_s: float = 10.0
    cafile: str | None = None  # a private CA for the relay's certificate (default: the system's)

    def problems(self) -> list[str]:
        out = []
        if not self.to:
            out.append("to: at least one recipient")
        if "@" not in self.sender:
            out.append(f"from: {self.sender!r} is not an address")
        out.extend(f"to: {a!r} is not an address" for a in self.to if "@" not in a)
        out.extend(channel_problems(self.lang, self.timeout_s, (self.host, self.port)))
        if self.username and not self.starttls:
            out.append("username: credentials are sent only over STARTTLS")
        return out


class EmailNotifier(Notifier):
    kind = "email"

    def __init__(self, settings: EmailSettings) -> None:
        require_valid(settings, "email")
        self.settings = settings

    def message(self, n: Notification) -> EmailMessage:
        s = self.settings
        r = render(n.payload, s.lang, s.console_url)
        msg = EmailMessage()
        msg["Subject"] = r.title
        msg["From"] = s.sender
        msg["To"] = ", ".join(s.to)
        msg["Date"] = formatdate(n.created, localtime=False)
        msg["Message-ID"] = f"<{n.key}@lifeline>"
        msg["X-Lifeline-Key"] = n.key
        msg.set_content(r.text)
        return msg

    def send(self, n: Notification) -> None:
        s = self.settings
        msg = self.message(n)
        try:
            with smtplib.SMTP(s.host, s.port, timeout=s.timeout_s) as smtp:
                smtp.ehlo()
                if s.starttls:
                    if not smtp.has_extn("starttls"):
                        raise DeliveryError(f"{s.host}:{s.port} does not offer STARTTLS", permanent=True)
                    smtp.starttls(context=ssl.create_default_context(cafile=s.cafile))
                    smtp.ehlo()
                if s.username:
                    smtp.login(s.username, s.password)
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:  # includes sender refused, auth failed, data refused
            raise DeliveryError(f"SMTP {exc.smtp_code} from {s.host}:{s.port}: {exc.smtp_error!r}",
                                permanent=500 <= exc.smtp_code < 600) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise DeliveryError(f"recipients refused by {s.host}:{s.port}: {exc.recipients!r}",
                                permanent=all(500 <= c < 600 for c in codes)) from exc
        except (smtplib.SMTPException, OSError) as exc:  # refused, reset, timeout, TLS: the relay may come back
            raise DeliveryError(f"{s.host}:{s.port}: {exc}") from exc
