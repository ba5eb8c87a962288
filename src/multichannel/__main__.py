"""``python -m multichannel``: the same command as ``multichannel``."""

from multichannel.cli import main

if __name__ == "__main__":
    main()
