"""The proxy: RFC 3261 §16 request handling built from a chain of small ordered modules."""
