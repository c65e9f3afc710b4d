"""Settings: one typed object, read by every layer. Imports nothing of shoal above it."""

from shoal.config.settings import (
    SETTING_NAMES,
    Settings,
    find_config_file,
    load_settings,
    parse_broker,
    read_config_file,
)

__all__ = [
    "SETTING_NAMES",
    "Settings",
    "find_config_file",
    "load_settings",
    "parse_broker",
    "read_config_file",
]
