"""Settings of the minimal example project: no database, CSRF on; works with Django 3.2 (Debian bookworm)
and 4.x/5.x."""
import os
from pathlib import Path

import django

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = 'sharpwsgi-example-key-not-for-production'
DEBUG = False
ALLOWED_HOSTS = ['localhost', '127.0.0.1', '[::1]']

# The admin (and what its models need) only for its static files: collectstatic gathers them, and sharpwsgi
# serves the result itself with --static /static/=STATIC_ROOT (see docs/static-files.md).
INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'django.contrib.auth',
    'django.contrib.admin',
    'django.contrib.staticfiles',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.middleware.common.CommonMiddleware',
    'django.middleware.csrf.CsrfViewMiddleware',
    'django.middleware.clickjacking.XFrameOptionsMiddleware',
]

ROOT_URLCONF = 'mysite.urls'
WSGI_APPLICATION = 'mysite.wsgi.application'

TEMPLATES = [
    {
        'BACKEND': 'django.template.backends.django.DjangoTemplates',
        'DIRS': [BASE_DIR / 'mysite' / 'templates'],
        'APP_DIRS': False,
        'OPTIONS': {'context_processors': ['django.template.context_processors.request']},
    },
]

DATABASES = {}
USE_TZ = True
LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'

# The download view's stand-in for a permission check (see views.download).
DOWNLOAD_TOKEN = os.environ.get('DJANGO_DOWNLOAD_TOKEN', 'let-me-in')

STATIC_URL = '/static/'
STATIC_ROOT = os.environ.get('DJANGO_STATIC_ROOT', str(BASE_DIR / 'staticfiles'))
# Hashed names (base.0123456789ab.css) that the server caches for a year, immutable.
_STATIC_STORAGE = 'django.contrib.staticfiles.storage.ManifestStaticFilesStorage'
if django.VERSION >= (4, 2):
    STORAGES = {
        'default': {'BACKEND': 'django.core.files.storage.FileSystemStorage'},
        'staticfiles': {'BACKEND': _STATIC_STORAGE},
    }
else:
    STATICFILES_STORAGE = _STATIC_STORAGE
