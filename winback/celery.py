"""The Celery app. Tasks are envelopes (STYLE.md): ids in, one plain function called."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "winback.settings")

# DjangoTask gives every task `delay_on_commit`, so work is enqueued only once the
# transaction that created it has committed.
app = Celery("winback", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
