from django.db.models import Avg, Count, Sum
from django.shortcuts import render

from .models import Author, Book


def index(request):
    """The benchmark page: four ORM queries (a filtered join, a grouped aggregate, a table aggregate, a count)
    rendered through a Django template."""
    books = Book.objects.filter(year__gte=1990).select_related('author').order_by('-rating', 'id')[:20]
    authors = (Author.objects.annotate(n_books=Count('books'), avg_rating=Avg('books__rating'))
               .order_by('-n_books', 'name')[:10])
    totals = Book.objects.aggregate(n_books=Count('id'), n_pages=Sum('pages'), avg_pages=Avg('pages'))
    norwegian = Author.objects.filter(country='NO').count()
    return render(request, 'library/index.html', {
        'books': books,
        'authors': authors,
        'totals': totals,
        'norwegian': norwegian,
    })
