"""The producer side: submit jobs, map over inputs in chunks, wait for results, resend lost messages.

Above the queue layer: it builds the same Celery app (worker/queue/app.py) to send by task name, and never
imports the tasks' code paths into a producer's hot loop.
"""
