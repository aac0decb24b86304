"""`celery -A worker.app worker` (and Flower's `-A worker.app`): the Celery app lives in worker/queue/app.py."""

from .queue.app import app, make_app

__all__ = ["app", "make_app"]
