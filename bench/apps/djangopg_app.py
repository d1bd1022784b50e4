"""djangopg: a Django site on PostgreSQL (bench/apps/djangopg/): one page running four ORM queries and
rendering a template. The suite starts PostgreSQL and passes its address in BENCH_PG_* (see its settings)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'djangopg'))
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'benchsite.settings')

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
