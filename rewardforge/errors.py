"""The one exception type for mistakes a user can fix (input, flags, files, environment).

The CLI prints a `UserError` on one line and exits 2; anything else is a bug in rewardforge and
keeps its traceback. It subclasses ValueError, which these errors were before.
"""


class UserError(ValueError):
    """Bad input, a bad flag or file, or a missing requirement; the message says the fix."""
