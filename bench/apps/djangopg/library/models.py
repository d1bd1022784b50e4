from django.db import models


class Author(models.Model):
    name = models.CharField(max_length=80)
    country = models.CharField(max_length=2, db_index=True)
    born = models.IntegerField()

    def __str__(self):
        return self.name


class Book(models.Model):
    title = models.CharField(max_length=160)
    author = models.ForeignKey(Author, related_name='books', on_delete=models.CASCADE)
    year = models.IntegerField(db_index=True)
    pages = models.IntegerField()
    rating = models.PositiveSmallIntegerField()  # 1..100

    def __str__(self):
        return self.title
