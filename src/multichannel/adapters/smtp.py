"""Email over SMTP with the standard library: STARTTLS or implicit TLS, optional login.

This is the email channel for anyone without an email API account: any
submission server (your own, your mail host's, a provider's SMTP relay) works.
Failures are translated once, in `_translate`, from the table `_REPLIES`.
"""

from __future__ import annotations

import logging
import re
import smtplib
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from ssl import SSLContext, SSLError, create_default_context
from types import MappingProxyType
from typing import Final, Self

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from multichannel._redact import mask_address
from multichannel.adapters._email import mailbox, subject_line
from multichannel.adapters._env import load_settings, loopback
from multichannel.adapters._errors import ErrorRule
from multichannel.adapters._pool import DEFAULT_MAX_CONNECTIONS, Workers, check_max_connections
from multichannel.adapters.base import BaseAdapter, Receipt, SendContext
from multichannel.contacts import ContactPoint
from multichannel.errors import (
    ConfigurationError,
    DeliveryError,
    PermanentError,
    ProviderError,
    TransientError,
)
from multichannel.messages import Content

__all__ = ["SMTPEmail"]

logger = logging.getLogger("multichannel.adapters.smtp")

DISPATCH_HEADER = "X-Multichannel-Dispatch"
_EMAIL = re.compile(r"[^\s<>@\"']+@[^\s<>@\"']+")
_ENHANCED = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")

# One row per failure the server or the network can produce. The key is the
# exception class and the reply's first digit (None: any reply, or no reply at
# all); `_translate` walks the exception's class hierarchy, most specific first.
_REPLIES: Final[Mapping[tuple[type[BaseException], int | None], ErrorRule]] = MappingProxyType(
    {
        (smtplib.SMTPRecipientsRefused, 4): ErrorRule(
            TransientError, "the server deferred the recipient"
        ),
        (smtplib.SMTPRecipientsRefused, 5): ErrorRule(
            PermanentError, "the server refused the recipient"
        ),
        # A refused sender blames our account or relay settings, not the person.
        (smtplib.SMTPSenderRefused, 4): ErrorRule(TransientError, "the server deferred the sender"),
        (smtplib.SMTPSenderRefused, 5): ErrorRule(ProviderError, "the server refused the sender"),
        (smtplib.SMTPAuthenticationError, 4): ErrorRule(TransientError, "login failed for now"),
        (smtplib.SMTPAuthenticationError, 5): ErrorRule(
            ProviderError, "the server refused the login"
        ),
        (smtplib.SMTPConnectError, 4): ErrorRule(
            TransientError, "the server is not taking mail now"
        ),
        (smtplib.SMTPConnectError, 5): ErrorRule(
            ProviderError, "the server refused the connection"
        ),
        (smtplib.SMTPHeloError, 4): ErrorRule(TransientError, "the server deferred the greeting"),
        (smtplib.SMTPHeloError, 5): ErrorRule(ProviderError, "the server refused the greeting"),
        (smtplib.SMTPResponseException, 4): ErrorRule(
            TransientError, "the server deferred the message"
        ),
        (smtplib.SMTPResponseException, 5): ErrorRule(
            PermanentError, "the server refused the message"
        ),
        (smtplib.SMTPNotSupportedError, None): ErrorRule(
            ProviderError, "the server lacks a needed feature"
        ),
        (smtplib.SMTPServerDisconnected, None): ErrorRule(TransientError, "the server hung up"),
        (smtplib.SMTPException, None): ErrorRule(ProviderError, "the SMTP exchange failed"),
        (SSLError, None): ErrorRule(ProviderError, "TLS with the server failed"),
        (OSError, None): ErrorRule(TransientError, "the server could not be reached"),
    }
)
_UNEXPECTED: Final = ErrorRule(ProviderError, "the server answered unexpectedly")


class _Settings(BaseSettings):
    """SMTPEmail's settings from SMTP_* environment variables."""

    model_config = SettingsConfigDict(extra="ignore")

    smtp_host: str
    smtp_from: str
    smtp_port: int | None = None
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool | None = None
    smtp_ssl: bool = False
    smtp_timeout: float = 30.0
    smtp_max_connections: int = DEFAULT_MAX_CONNECTIONS
    smtp_reply_to: str | None = None


class SMTPEmail(BaseAdapter):
    """Email through an SMTP server, one connection per message.

    ``starttls`` upgrades a plain connection (port 587); ``ssl`` speaks TLS from
    the first byte (port 465); ``tls_context`` verifies the server (default: the
    system's CAs). Logs in when ``username`` is given. The receipt's
    ``provider_id`` is the Message-ID header, angle brackets included.
    smtplib has no async client, so ``asend`` runs ``send`` on the adapter's
    own threads: up to ``max_connections`` (default 64) messages are handed to
    the server at once, whatever the process's default thread pool holds;
    `close` and `aclose` let idle threads end. ``name`` (default ``smtp``)
    tells two servers apart in one dispatcher.
    Raises ConfigurationError for contradictory or missing settings; `send`
    raises TransientError, PermanentError or ProviderError.
    """

    name = "smtp"
    channel = "email"

    def __init__(
        self,
        *,
        name: str | None = None,
        host: str,
        from_email: str,
        port: int = 587,
        username: str | None = None,
        password: str | SecretStr | None = None,
        starttls: bool = True,
        ssl: bool = False,
        timeout: float = 30,
        reply_to: str | None = None,
        tls_context: SSLContext | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        super().__init__(name=name)
        self.max_connections = check_max_connections(max_connections, self.name)
        if not host.strip():
            raise ConfigurationError(f"{self.name}: host is empty")
        if not 0 < port < 65536:
            raise ConfigurationError(f"{self.name}: port {port} is not a TCP port")
        if timeout <= 0:
            raise ConfigurationError(f"{self.name}: timeout must be longer than zero seconds")
        if starttls and ssl:
            raise ConfigurationError(
                f"{self.name}: starttls and ssl are both on; use ssl=True with starttls=False "
                "for implicit TLS (port 465), or starttls=True alone (port 587)"
            )
        if (username is None) != (password is None):
            raise ConfigurationError(
                f"{self.name}: username and password go together; give both or none"
            )
        if username is not None and not (starttls or ssl) and not loopback(host):
            raise ConfigurationError(
                f"{self.name}: the password would cross the network to {host} unencrypted; "
                "turn on starttls or ssl"
            )
        self._host = host.strip()
        self._port = port
        self._from_email = from_email
        self._envelope_from = mailbox("from_email", from_email, self.name)
        self._reply_to = reply_to
        if reply_to is not None:
            mailbox("reply_to", reply_to, self.name)
        self._username = username
        self._password = (
            password
            if password is None or isinstance(password, SecretStr)
            else (SecretStr(password))
        )
        self._starttls = starttls
        self._ssl = ssl
        self._timeout = float(timeout)
        self._tls_context = tls_context or create_default_context()
        self._workers = Workers(self.max_connections, name=self.name)

    @classmethod
    def from_env(cls, *, name: str | None = None) -> Self:
        """Build from SMTP_HOST, SMTP_FROM and the optional SMTP_* settings.

        SMTP_SSL=true alone means implicit TLS on port 465 (STARTTLS off unless
        SMTP_STARTTLS says otherwise); SMTP_MAX_CONNECTIONS sizes the threads of
        ``asend``; ``name`` names the adapter. Raises
        ConfigurationError naming each missing or invalid variable.
        """
        settings = load_settings(_Settings, name or cls.name)
        starttls = settings.smtp_starttls
        if starttls is None:
            starttls = not settings.smtp_ssl
        port = settings.smtp_port or (465 if settings.smtp_ssl else 587)
        password = settings.smtp_password
        return cls(
            name=name,
            host=settings.smtp_host,
            from_email=settings.smtp_from,
            port=port,
            username=settings.smtp_username or None,
            password=password if password and password.get_secret_value() else None,
            starttls=starttls,
            ssl=settings.smtp_ssl,
            timeout=settings.smtp_timeout,
            max_connections=settings.smtp_max_connections,
            reply_to=settings.smtp_reply_to or None,
        )

    @property
    def timeout(self) -> float:
        """Seconds each exchange with the server may take; the dispatcher counts it per try.

        A send is several exchanges (connect, TLS, login, the message), each
        bounded by this, so a server that is slow at every step can take longer.
        """
        return self._timeout

    def __repr__(self) -> str:
        security = "ssl" if self._ssl else "starttls" if self._starttls else "plain"
        return (
            f"SMTPEmail(name={self.name!r}, host={self._host!r}, port={self._port}, {security}, "
            f"from_email={self._from_email!r}, username={self._username!r})"
        )

    def send(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """Hand the message to the server once; the receipt carries its Message-ID.

        Raises TransientError (4xx replies, timeouts, dropped connections),
        PermanentError (a refused recipient or message) or ProviderError
        (refused login or sender, failed TLS).
        """
        message = self._compose(point, content, ctx)
        masked = mask_address(point.address)
        logger.debug(
            "%s: sending email to %s through %s:%d", self.name, masked, self._host, self._port
        )
        try:
            self._deliver(message, point.address)
        except (smtplib.SMTPException, OSError) as err:
            error = _translate(err, self.name)
            logger.info("%s: email to %s not sent: %s", self.name, masked, error)
            raise error from err
        message_id = str(message["Message-ID"])
        logger.info(
            "%s: email to %s accepted by %s as %s", self.name, masked, self._host, message_id
        )
        return Receipt(provider_id=message_id)

    async def asend(self, point: ContactPoint, content: Content, ctx: SendContext) -> Receipt:
        """`send` on one of the adapter's threads, so the event loop is never blocked."""
        return await self._workers.run(self.send, point, content, ctx)

    def close(self) -> None:
        """Let the adapter's idle threads end; a later ``asend`` starts new ones."""
        self._workers.close()

    def _compose(self, point: ContactPoint, content: Content, ctx: SendContext) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._from_email
        message["To"] = point.address
        message["Subject"] = subject_line(content)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._envelope_from.rpartition("@")[2])
        message[DISPATCH_HEADER] = ctx.dispatch_id
        if self._reply_to is not None:
            message["Reply-To"] = self._reply_to
        message.set_content(content.body)
        if content.html:
            message.add_alternative(content.html, subtype="html")
        for attachment in content.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            if not maintype or not subtype:
                maintype, subtype = "application", "octet-stream"
            message.add_attachment(
                attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
            )
        return message

    def _deliver(self, message: EmailMessage, recipient: str) -> None:
        connection = self._connect()
        try:
            if self._username is not None and self._password is not None:
                connection.login(self._username, self._password.get_secret_value())
            connection.send_message(message, from_addr=self._envelope_from, to_addrs=[recipient])
        finally:
            _close(connection)

    def _connect(self) -> smtplib.SMTP:
        if self._ssl:
            return smtplib.SMTP_SSL(
                self._host, self._port, timeout=self._timeout, context=self._tls_context
            )
        connection = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        if self._starttls:
            try:
                connection.starttls(context=self._tls_context)
            except BaseException:
                _close(connection)
                raise
        return connection


def _close(connection: smtplib.SMTP) -> None:
    # Once the server has taken the message, a failed QUIT must not turn the
    # send into a failure: that would send it twice on retry.
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _reply(err: BaseException) -> tuple[int | None, str]:
    """The server's reply code and text carried by ``err``, if it carries one."""
    raw: bytes | str
    if isinstance(err, smtplib.SMTPRecipientsRefused) and err.recipients:
        code, raw = next(iter(err.recipients.values()))
    elif isinstance(err, smtplib.SMTPResponseException):
        code, raw = err.smtp_code, err.smtp_error
    else:
        return None, str(err)
    text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else str(raw)
    return (code if isinstance(code, int) and code > 0 else None), text


def _translate(err: BaseException, provider: str) -> DeliveryError:
    """The library error for an SMTP or network failure, from `_REPLIES`."""
    code, text = _reply(err)
    digit = code // 100 if code is not None else None
    rows = (
        _REPLIES.get((klass, digit)) or _REPLIES.get((klass, None)) for klass in type(err).__mro__
    )
    rule = next((row for row in rows if row is not None), _UNEXPECTED)
    # Server texts often quote the recipient; logs and notes get it masked.
    detail = _EMAIL.sub(lambda match: mask_address(match.group(0)), " ".join(text.split()))
    reply = f"{code} {detail}" if code is not None else detail or type(err).__name__
    enhanced = _ENHANCED.search(detail)
    return rule.error(
        f"{rule.meaning}: {reply}",
        provider=provider,
        code=enhanced.group(1) if enhanced else None,
        status=code,
    )
