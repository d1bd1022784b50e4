using System.Runtime.CompilerServices;

// The Gateway room's unit tests drive start_response, the writer and wsgi.input directly, against a fake host.
[assembly: InternalsVisibleTo("SharpWsgi.Gateway.Tests")]
// The micro-benchmarks (bench/Micro) measure start_response on its own, as RequestRunner builds it.
[assembly: InternalsVisibleTo("SharpWsgi.Micro")]
