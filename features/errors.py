"""The one exception type for problems a user can cause and fix."""


class UserError(Exception):
    """Bad input, configuration or state; the message is one sentence meant for the user.

    The command line prints it without a traceback and exits with status 2. Every package
    (features, training, serving) raises this or a subclass for anything a user can cause.
    """
