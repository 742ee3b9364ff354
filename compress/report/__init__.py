"""The report (schema_version 1): schema, terminal table, Markdown."""

from compress.report.schema import Report

__all__ = ["Report"]
