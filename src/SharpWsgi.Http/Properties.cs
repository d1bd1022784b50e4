using System.Runtime.CompilerServices;

// The parsers' unit tests also check intermediate steps (a Forwarded element's nodes).
[assembly: InternalsVisibleTo("SharpWsgi.Hosting.Tests")]
