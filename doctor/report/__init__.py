"""The report: its document, the cause codes, and the reporters that render it."""
