# Settings SharpWsgi cannot take from a gunicorn config: each is named in one warning line.
import multiprocessing

bind = "127.0.0.1:8000"
workers = multiprocessing.cpu_count() * 0 + 2
worker_class = "gevent"
preload_app = True
enable_backlog_metric = True
user = None
daemon = False
wsgi_app = "pid_app:application"
