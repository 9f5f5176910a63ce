"""Principals, per-org memberships and RBAC, passwords, the directory of Users and Customers, sessions,
tokens, signing keys, sign-in and profiles.
"""
