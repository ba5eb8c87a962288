"""The multichannel command (placeholder replaced below)."""


def main() -> None:
    raise SystemExit(0)
