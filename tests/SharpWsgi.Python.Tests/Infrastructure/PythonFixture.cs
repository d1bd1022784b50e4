global using SharpWsgi.Testing;

namespace SharpWsgi.Python.Tests.Infrastructure;

/// <summary>
/// Every test class of this project is in this one collection: the interpreter is initialised once per test
/// run (CPython cannot be initialised twice in a process) and the tests run one at a time, so reference counts,
/// the finalizer queue and the GIL are not disturbed by another test.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PythonCollection : ICollectionFixture<PythonFixture>
{
    public const string Name = "Python";
}

/// <summary>The collection's fixture: the embedded interpreter (<see cref="EmbeddedPython"/>).</summary>
public sealed class PythonFixture
{
    public const string Interpreter = EmbeddedPython.Interpreter;
    public PythonFixture() => EmbeddedPython.EnsureInitialized("sharpwsgi-python-tests");
}
