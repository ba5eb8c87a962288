"""The demo: its script and data, local stand-ins of the providers, and the restart run."""
