"""Settings: one typed object, read by every layer. Imports nothing of shoal above it."""

from shoal.config.loading import find_config_file, load_settings, read_config_file
from shoal.config.names import SETTING_NAMES
from shoal.config.parsers import parse_broker
from shoal.config.settings import Settings, warn_ignored

__all__ = [
    "SETTING_NAMES",
    "Settings",
    "find_config_file",
    "load_settings",
    "parse_broker",
    "read_config_file",
    "warn_ignored",
]
