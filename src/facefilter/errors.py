"""The one exception type for mistakes a user can fix.

The CLI prints a `UserError` as a single line and exits with status 2; anything
else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A bad input, path or option. The message names the value and the fix."""
