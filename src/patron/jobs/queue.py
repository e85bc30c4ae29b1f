"""The Redis queue: enqueue a job by name, run workers, and register the periodic schedule."""

from __future__ import annotations

from typing import Any

from redis import Redis
from rq import Queue, Worker
from rq.cron import CronScheduler
from rq.job import Job

from patron.errors import InvalidInputError
from patron.jobs.tasks import JOBS
from patron.settings import get_settings


def redis_connection() -> Redis:
    return Redis.from_url(get_settings().redis_url)


def job_queue(connection: Redis | None = None, name: str | None = None) -> Queue:
    return Queue(name or get_settings().queue_name, connection=connection or redis_connection())


def enqueue(name: str, queue: Queue | None = None, **arguments: Any) -> Job:
    """Put the named job (score, segments, daily) on the queue; a worker picks it up."""
    if name not in JOBS:
        raise InvalidInputError(f"there is no job {name!r}; use one of {', '.join(JOBS)}", field="job")
    queue = queue or job_queue()
    return queue.enqueue(JOBS[name], kwargs=arguments, job_timeout=get_settings().job_timeout_seconds)


def worker(queue: Queue | None = None) -> Worker:
    queue = queue or job_queue()
    return Worker([queue], connection=queue.connection)


def schedule(connection: Redis | None = None, queue_name: str | None = None) -> CronScheduler:
    """A cron scheduler with Patron's periodic jobs (cron expressions from settings; empty turns one off)."""
    settings = get_settings()
    scheduler = CronScheduler(connection=connection or redis_connection())
    name = queue_name or settings.queue_name
    for job, cron in (
        ("score", settings.score_cron),
        ("segments", settings.segments_cron),
        ("daily", settings.daily_cron),
    ):
        if cron:
            scheduler.register(JOBS[job], queue_name=name, cron=cron, job_timeout=settings.job_timeout_seconds)
    return scheduler
