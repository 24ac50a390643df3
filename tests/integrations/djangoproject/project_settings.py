"""A tiny Django project whose database file is offload's store too."""

import os

DB = os.environ["OFFLOAD_DJANGO_DB"]
SECRET_KEY = "test"  # noqa: S105
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "offload.integrations.django", "shop"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}}
OFFLOAD = {"url": f"sqlite:///{DB}"}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
