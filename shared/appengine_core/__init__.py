"""Shared core of the AppEngine-compatible serverless backend.

Shipped to every function as one Lambda layer and imported the same way in tests.
Layers, in the one direction calls flow: handlers (functions/*/app.py) -> services -> data access
(``store``, ``signing``, ``events``: the only modules that talk to AWS).
"""
