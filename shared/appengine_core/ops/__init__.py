"""Operators' tools on top of every wing: the CLI, the seed loader, the scheduled jobs."""
