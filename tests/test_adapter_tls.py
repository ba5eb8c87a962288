"""Both of an adapter's clients trust the same authorities: the CA bundle the environment names.

A TLS server on 127.0.0.1 presents a certificate signed by a private authority
made for the test. `send` (requests) and `asend` (aiohttp) reach it only when
``REQUESTS_CA_BUNDLE`` names that authority when the adapter is built, and
both refuse it otherwise.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from multichannel import ContactPoint, Content, DeliveryError, SendContext
from multichannel.adapters.telnyx import TelnyxFax

FAX = Content(body="", media_url="https://files.example.com/referral.pdf")
CTX = SendContext(dispatch_id="d-1", contact_id="c-1")
NUMBER = ContactPoint(channel="fax", address="+17345550100")
START = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _write_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A private authority, and a certificate for 127.0.0.1 it signed: (ca, cert, key) files."""
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = (
        x509.CertificateBuilder()
        .subject_name(_name("multichannel test authority"))
        .issuer_name(_name("multichannel test authority"))
        .public_key(authority_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=36_500))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(authority_key.public_key()), critical=False
        )
        .sign(authority_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(authority.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(START)
        .not_valid_after(START + dt.timedelta(days=36_500))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority_key.public_key()),
            critical=False,
        )
        .sign(authority_key, hashes.SHA256())
    )
    ca, cert, key = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca.write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca, cert, key


class _Telnyx(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"data": {"id": "fax-1", "status": "queued"}}).encode()
        self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The origin of a TLS stand-in of Telnyx, and the file of the authority that signed it."""
    ca, cert, key = _write_certificates(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Telnyx)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", ca
    finally:
        server.shutdown()
        server.server_close()


def _fax(origin: str) -> TelnyxFax:
    return TelnyxFax(
        api_key="KEY0190telnyxTLSsecret",
        connection_id="1684641123236054244",
        from_number="+13125790015",
        base_url=origin,
    )


async def _asend(fax: TelnyxFax) -> str:
    try:
        return (await fax.asend(NUMBER, FAX, CTX)).provider_id
    finally:
        await fax.aclose()


def test_both_paths_trust_the_bundle_the_environment_names(
    tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, ca = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    with _fax(origin) as fax:
        assert fax.send(NUMBER, FAX, CTX).provider_id == "fax-1"
    assert asyncio.run(_asend(_fax(origin))) == "fax-1"


def test_without_the_bundle_both_paths_refuse_the_unknown_authority(
    tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, _ = tls
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with _fax(origin) as fax, pytest.raises(DeliveryError, match="could not connect"):
        fax.send(NUMBER, FAX, CTX)
    with pytest.raises(DeliveryError, match="could not connect"):
        asyncio.run(_asend(_fax(origin)))


def test_the_bundle_is_read_when_the_adapter_is_built(
    tls: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    origin, ca = tls
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    fax = _fax(origin)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with fax:
        assert fax.send(NUMBER, FAX, CTX).provider_id == "fax-1"
    assert asyncio.run(_asend(fax)) == "fax-1"
