"""Tables: Faust's stateful processing (see docs/tables.md)."""

from shoal.tables.errors import TableError
from shoal.tables.manager import TableManager
from shoal.tables.sets import ChangeloggedSet, SetGlobalTable, SetTable
from shoal.tables.table import Collection, GlobalTable, Table
from shoal.tables.windows import HoppingWindow, SlidingWindow, TumblingWindow, Window
from shoal.tables.wrappers import WindowSet, WindowWrapper

__all__ = [
    "ChangeloggedSet",
    "Collection",
    "GlobalTable",
    "HoppingWindow",
    "SetGlobalTable",
    "SetTable",
    "SlidingWindow",
    "Table",
    "TableError",
    "TableManager",
    "TumblingWindow",
    "Window",
    "WindowSet",
    "WindowWrapper",
]
