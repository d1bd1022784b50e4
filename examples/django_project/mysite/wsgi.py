"""WSGI entry point of the example Django project. Run: dotnet run -c Release --project src/SharpWsgi -- --python /usr/bin/python3 --chdir examples/django_project mysite.wsgi:application"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')

application = get_wsgi_application()
