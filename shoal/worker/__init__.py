"""One worker process: an event loop running the app's agents against its partitions."""

from shoal.worker.runner import run_worker

__all__ = ["run_worker"]
