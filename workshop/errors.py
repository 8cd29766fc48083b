"""The one exception the toolkit raises for problems a person can fix; the CLI prints it without a traceback."""


class WorkshopError(Exception):
    """A problem with a clear fix, shown to the user as one line."""
