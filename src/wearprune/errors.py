"""User-facing errors: one clear line each, shown by the CLI without a traceback."""


class WearpruneError(Exception):
    """A problem the user can fix; the message says what is wrong and what to do."""


class DataError(WearpruneError):
    """Missing, corrupt or malformed data."""


class ConfigError(WearpruneError):
    """A bad option, model name, run directory or configuration value."""
