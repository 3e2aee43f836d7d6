"""Plain Python values from the domain libraries -> Dagster metadata values."""

import dagster as dg


def to_metadata_value(value) -> dg.MetadataValue:
    """Ints, floats and booleans stay typed (the UI plots them over runs), Markdown tables
    render as tables, dicts and lists as JSON, anything else as text."""
    if isinstance(value, dg.MetadataValue):
        return value
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str) and value.lstrip().startswith("|"):
        return dg.MetadataValue.md(value)
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(value)
    return dg.MetadataValue.text(str(value))
