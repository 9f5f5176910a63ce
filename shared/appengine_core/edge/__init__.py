"""The HTTP edge: the function wrapper and error mapping, the guard, list envelopes, metering, the
authorizer's decision.
"""
