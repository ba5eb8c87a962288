"""The built-in adapters as attributes of ``multichannel.adapters``, imported on first use.

Each check runs in a fresh interpreter, where ``sys.modules`` shows exactly what
an import pulled in.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import textwrap

import pytest

import multichannel.adapters

BUILT_IN = {
    "SMTPEmail": "multichannel.adapters.smtp",
    "SendGridEmail": "multichannel.adapters.sendgrid",
    "TelnyxFax": "multichannel.adapters.telnyx",
    "TwilioSMS": "multichannel.adapters.twilio_sms",
    "TwilioVoiceDrop": "multichannel.adapters.twilio_voice",
}
# Never imported by `import multichannel.adapters`: the SDKs, their HTTP stacks
# and the settings loader are for building an adapter, not for importing one.
HEAVY = (
    "twilio",
    "sendgrid",
    "python_http_client",
    "requests",
    "aiohttp",
    "pydantic_settings",
)


def run(script: str) -> str:
    """Run ``script`` in a fresh interpreter; its stdout, or the test fails with its stderr."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_importing_the_package_imports_no_sdk_and_no_settings_loader() -> None:
    loaded = json.loads(
        run(
            """
            import json, sys
            import multichannel.adapters
            print(json.dumps(sorted(sys.modules)))
            """
        )
    )

    heavy = [name for name in loaded if name.split(".")[0] in HEAVY]
    assert heavy == []
    assert [name for name in BUILT_IN.values() if name in loaded] == []


def test_reading_entry_points_still_works_after_a_light_import() -> None:
    found = run(
        """
        import multichannel.adapters
        print(" ".join(item.name for item in multichannel.adapters.Registry.discover()))
        """
    ).split()

    assert {"twilio-sms", "twilio-voice", "sendgrid", "smtp", "telnyx-fax"} <= set(found)


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_each_built_in_adapter_is_an_attribute_of_the_package(name: str) -> None:
    found = getattr(multichannel.adapters, name)

    assert found is getattr(importlib.import_module(BUILT_IN[name]), name)
    assert name in dir(multichannel.adapters)
    assert name in multichannel.adapters.__all__


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_from_the_package_imports_one_adapter_and_only_its_module(name: str) -> None:
    loaded = json.loads(
        run(
            f"""
            import json, sys
            from multichannel.adapters import {name}
            print(json.dumps([{name}.__module__, sorted(sys.modules)]))
            """
        )
    )

    module, modules = loaded
    assert module == BUILT_IN[name]
    others = [other for key, other in BUILT_IN.items() if key != name and other in modules]
    # The two Twilio adapters share their helpers, not each other's module.
    assert others == []


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'TwilioFax'"):
        multichannel.adapters.TwilioFax  # noqa: B018


def test_every_name_in_all_resolves() -> None:
    for name in multichannel.adapters.__all__:
        assert getattr(multichannel.adapters, name) is not None


@pytest.mark.parametrize(
    ("name", "missing", "build", "hint"),
    [
        (
            "TwilioSMS",
            "twilio",
            "TwilioSMS(account_sid='AC1', auth_token='t', from_number='+15005550006')",
            "pip install 'multichannel[twilio]'",
        ),
        (
            "TwilioVoiceDrop",
            "twilio",
            "TwilioVoiceDrop(account_sid='AC1', auth_token='t', from_number='+15005550006')",
            "pip install 'multichannel[twilio]'",
        ),
        (
            "SendGridEmail",
            "sendgrid",
            "SendGridEmail(api_key='SG.key', from_email='a@clinic.example')",
            "pip install 'multichannel[sendgrid]'",
        ),
        (
            "SendGridEmail",
            "aiohttp",
            "SendGridEmail(api_key='SG.key', from_email='a@clinic.example')",
            "pip install 'multichannel[sendgrid]'",
        ),
        (
            "TelnyxFax",
            "aiohttp",
            "TelnyxFax(api_key='KEY', connection_id='1', from_number='+13125790015')",
            "pip install 'multichannel[telnyx]'",
        ),
        (
            "TelnyxFax",
            "requests",
            "TelnyxFax(api_key='KEY', connection_id='1', from_number='+13125790015')",
            "pip install 'multichannel[telnyx]'",
        ),
    ],
)
def test_a_missing_extra_fails_only_when_the_adapter_is_built(
    name: str, missing: str, build: str, hint: str
) -> None:
    said = run(
        f"""
        import sys
        sys.modules[{missing!r}] = None  # as if the extra were not installed
        from multichannel import ConfigurationError
        from multichannel.adapters import {name}
        try:
            {build}
        except ConfigurationError as err:
            print(err)
        """
    )

    assert hint in said
