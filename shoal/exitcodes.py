"""Exit codes are a protocol between a worker, its supervisor and whoever runs the supervisor
(systemd, a container runtime, a shell): one definition, used by all of them."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    #: A graceful stop.
    OK = 0
    #: A crash (an agent under the ``crash`` policy, a dead thread, lost outputs) or a stop
    #: that was not clean (a worker had to be killed). A supervisor restarts such a worker.
    FAILED = 1
    #: The app cannot boot: it cannot be imported, a setting is wrong, or (for
    #: ``clusterctl up``/``worker``) no broker answered at start. Restarting cannot help, so a
    #: supervisor stops instead of restarting forever (gunicorn's WORKER_BOOT_ERROR).
    BOOT_ERROR = 3
