from django.urls import path
from django.views.generic import RedirectView

from . import views

urlpatterns = [
    path('', views.index, name='index'),
    path('form/', views.form, name='form'),
    path('thanks/', views.thanks, name='thanks'),
    path('old/', RedirectView.as_view(url='/', permanent=False), name='old'),
    path('download/<path:name>', views.download, name='download'),
]
