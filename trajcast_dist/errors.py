"""Errors meant for users: the CLI prints them as one line and exits non-zero."""

__all__ = ["UserError"]


class UserError(Exception):
    """Bad input (file, field, value): the message names it and says the fix."""
