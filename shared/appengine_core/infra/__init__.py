"""The base every wing stands on: settings, AWS clients, errors, tenant keys, the store, events and the
outbox, paging, DynamoDB's limits, the record envelope.
"""
