"""The toolkit's version, in one place (reports and analysis files record it)."""

__version__ = "0.1.0"
