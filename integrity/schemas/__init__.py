"""The PREMIS 3.0 XML schema, shipped for offline validation."""
