"""Fills the library with the same data every time: 100 authors, 2,000 books (a fixed random seed)."""
import random

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from library.models import Author, Book

FIRST = ['Astrid', 'Bjorn', 'Chiara', 'Dmitri', 'Elif', 'Farid', 'Greta', 'Hiroshi', 'Ines', 'Jonas']
LAST = ['Andersen', 'Bianchi', 'Costa', 'Dubois', 'Eriksen', 'Fischer', 'Garcia', 'Hansen', 'Ivanova', 'Jensen']
COUNTRIES = ['NO', 'SE', 'DK', 'IT', 'FR', 'DE', 'ES', 'JP', 'PT', 'RU']
WORDS = ['silent', 'river', 'winter', 'glass', 'garden', 'north', 'memory', 'salt', 'harbour', 'lantern',
         'stone', 'orchard', 'distant', 'copper', 'island', 'letters', 'shadow', 'summer', 'bridge', 'atlas']
AUTHORS = 100
BOOKS = 2000


class Command(BaseCommand):
    help = 'Seed the benchmark database with deterministic data (does nothing if it already has books).'

    def handle(self, *args, **options):
        if Book.objects.exists():
            self.stdout.write('already seeded')
            return
        rng = random.Random(20261123)
        with transaction.atomic():
            authors = Author.objects.bulk_create([
                Author(name='%s %s' % (FIRST[i % 10], LAST[i // 10]), country=COUNTRIES[(i * 7 + i // 10) % 10],
                       born=1900 + rng.randrange(100))
                for i in range(AUTHORS)])
            if authors[0].pk is None:  # SQLite (BENCH_SQLITE) returns no ids from a bulk insert: read them back
                authors = list(Author.objects.order_by('id'))
            Book.objects.bulk_create([
                Book(title='the %s %s' % (rng.choice(WORDS), rng.choice(WORDS)), author=rng.choice(authors),
                     year=1950 + rng.randrange(75), pages=80 + rng.randrange(700), rating=1 + rng.randrange(100))
                for _ in range(BOOKS)], batch_size=500)
        with connection.cursor() as cursor:
            cursor.execute('ANALYZE')  # stable query plans from the first request on
        self.stdout.write('seeded %d authors, %d books' % (AUTHORS, BOOKS))
