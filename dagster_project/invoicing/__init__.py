"""Invoicing: assembly, finalization and numbering, documents, publishing."""
