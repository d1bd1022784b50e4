import platform

import django
from django.http import HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import urlencode


def index(request):
    return render(request, 'index.html', {
        'python': platform.python_version(),
        'django': django.get_version(),
        'script_name': request.META.get('SCRIPT_NAME', ''),
    })


def form(request):
    # CsrfViewMiddleware has already rejected a POST without a matching token (403) before we get here.
    if request.method == 'POST':
        name = request.POST.get('name', '').strip()
        if not name:
            return HttpResponseBadRequest('name is required\n')
        return HttpResponseRedirect(reverse('thanks') + '?' + urlencode({'name': name}))
    return render(request, 'form.html')


def thanks(request):
    return render(request, 'thanks.html', {'name': request.GET.get('name', '')})
