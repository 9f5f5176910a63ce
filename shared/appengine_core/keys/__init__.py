"""API keys: the format, request models, the management service and the authorizer's authenticator."""
