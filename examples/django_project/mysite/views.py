import mimetypes
import platform
from urllib.parse import quote

import django
from django.conf import settings
from django.http import HttpResponse, HttpResponseBadRequest, HttpResponseForbidden, HttpResponseRedirect
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


def download(request, name):
    """A protected download: Django decides who gets the file, the server sends it. The view names the file with
    X-Accel-Redirect under the server's --internal location (sharpwsgi --internal /protected/=DIR, as nginx's
    `location /protected/ { internal; alias DIR/; }`), the way django-sendfile2's nginx backend does: the path
    percent-encoded, the type guessed from the name, Content-Disposition for the browser. The server drops this
    empty body and sends the file with sendfile, ranges and 304s; a request for /protected/... from outside is 404.
    """
    if request.GET.get('token') != settings.DOWNLOAD_TOKEN:  # stands for a real permission check
        return HttpResponseForbidden('no download for you\n')
    content_type, _ = mimetypes.guess_type(name)
    response = HttpResponse(content_type=content_type or 'application/octet-stream')
    response['Content-Disposition'] = "attachment; filename*=UTF-8''" + quote(name.rsplit('/', 1)[-1])
    response['X-Accel-Redirect'] = '/protected/' + quote(name)
    return response
