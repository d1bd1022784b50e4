using System.Runtime.CompilerServices;

// The Gateway room's unit tests drive start_response, the writer and wsgi.input directly, against a fake host.
[assembly: InternalsVisibleTo("SharpWsgi.Gateway.Tests")]
