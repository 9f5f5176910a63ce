"""The generic repository: the record writer, the query language and the repository service."""
