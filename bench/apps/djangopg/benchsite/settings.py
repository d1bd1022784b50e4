"""Settings of the djangopg benchmark site: production-like (DEBUG off), PostgreSQL through psycopg2.

The suite starts its own PostgreSQL and passes where it listens in the environment:
BENCH_PG_HOST (the unix socket directory, or 127.0.0.1), BENCH_PG_PORT, BENCH_PG_NAME, BENCH_PG_USER.
BENCH_SQLITE=PATH uses that SQLite file instead (bench/appcost.sh: instructions per request, no database server).
"""
import os

SECRET_KEY = 'djangopg-benchmark-only-not-a-secret'
DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']

INSTALLED_APPS = ['library']

# The stateless middleware a production site keeps; no sessions, auth or CSRF (the page has no form).
MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'benchsite.urls'

TEMPLATES = [{
    'BACKEND': 'django.template.backends.django.DjangoTemplates',
    'DIRS': [],
    'APP_DIRS': True,  # with DEBUG off Django wraps the loaders in the cached loader
    'OPTIONS': {'context_processors': []},
}]

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'HOST': os.environ.get('BENCH_PG_HOST', '127.0.0.1'),
        'PORT': os.environ.get('BENCH_PG_PORT', '5432'),
        'NAME': os.environ.get('BENCH_PG_NAME', 'bench'),
        'USER': os.environ.get('BENCH_PG_USER', 'bench'),
        'PASSWORD': '',
        # Persistent connections: each server thread opens one connection on its first request and keeps it
        # (None = no age limit), so no server pays a connection per request and all are measured the same way.
        'CONN_MAX_AGE': None,
    },
}

if os.environ.get('BENCH_SQLITE'):
    DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': os.environ['BENCH_SQLITE']}}

DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
USE_TZ = True
TIME_ZONE = 'UTC'
USE_I18N = False
USE_L10N = False

# Errors to the server's log (with DEBUG off Django would only mail them to ADMINS, and there are none).
LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'stderr': {'class': 'logging.StreamHandler'}},
    'loggers': {'django': {'handlers': ['stderr'], 'level': 'WARNING'}},
}
