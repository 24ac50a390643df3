"""A tiny Django project whose database is offload's store too: a SQLite file, or (with
OFFLOAD_DJANGO_PG set) a schema of the PostgreSQL test database."""

import os

SECRET_KEY = "test"  # noqa: S105
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "offload.integrations.django", "shop"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

if os.environ.get("OFFLOAD_DJANGO_PG"):
    from urllib.parse import urlsplit

    STORE = os.environ["OFFLOAD_DJANGO_PG"]  # postgresql://user@host:port/db?schema=NAME
    where = urlsplit(STORE)
    SCHEMA = where.query.partition("schema=")[2]
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": where.path.lstrip("/"),
            "USER": where.username or "",
            "PASSWORD": where.password or "",
            "HOST": where.hostname or "",
            "PORT": str(where.port or ""),
            "OPTIONS": {"options": f"-c search_path={SCHEMA}"},
        }
    }
    OFFLOAD = {"url": STORE}
else:
    DB = os.environ["OFFLOAD_DJANGO_DB"]
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": DB}}
    OFFLOAD = {"url": f"sqlite:///{DB}"}
