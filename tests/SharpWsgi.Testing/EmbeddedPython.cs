using System.Runtime.ExceptionServices;
using SharpWsgi.Python;

namespace SharpWsgi.Testing;

/// <summary>
/// The embedded interpreter of a unit test run, initialised the way a worker does it: Debian's /usr/bin/python3
/// described by <see cref="PythonLocator"/> (which asks that interpreter once for its configuration) and loaded
/// through its shared libpython. CPython cannot be initialised twice in a process, so this happens once; the GIL
/// is released when it is done, and tests take it on Python threads (<see cref="OnPython.Run"/>).
/// </summary>
public static class EmbeddedPython
{
    public const string Interpreter = "/usr/bin/python3";
    private static readonly object Gate = new();

    public static void EnsureInitialized(string programName)
    {
        lock (Gate)
        {
            if (PythonRuntime.IsInitialized) return;
            var info = PythonLocator.Describe(Interpreter, "the test fixture");
            PythonRuntime.Embed(info, Array.Empty<string>(), new[] { programName });
        }
    }
}

/// <summary>Runs test code on a fresh Python thread (<see cref="PythonThread"/>) with the GIL held.</summary>
public static class OnPython
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Runs body on a new Python thread and waits for it; an exception in body is rethrown here. A Python error
    /// left pending by body fails the test, and queued finalizer decrefs are drained afterwards.
    /// </summary>
    public static void Run(Action body) => Run(() => { body(); return 0; });

    public static T Run<T>(Func<T> body)
    {
        var thread = Start(body, out var outcome);
        if (!thread.Join(Timeout)) throw new TimeoutException($"the Python thread did not finish within {Timeout}");
        return outcome.Get();
    }

    /// <summary>Starts body on a new Python thread; <see cref="Outcome{T}.Get"/> rethrows its failure.</summary>
    public static Thread Start<T>(Func<T> body, out Outcome<T> outcome)
    {
        var result = new Outcome<T>();
        outcome = result;
        return PythonThread.Start("python-test", () =>
        {
            try
            {
                result.Value = body();
                PendingError.ThrowIfAny(); // a Python error left pending by the test fails it
            }
            catch (Exception e) { result.Error = ExceptionDispatchInfo.Capture(e); }
            finally { DecRefQueue.Drain(); }
        });
    }

    public static Thread Start(Action body, out Outcome<int> outcome) =>
        Start(() => { body(); return 0; }, out outcome);

    public sealed class Outcome<T>
    {
        internal T? Value;
        internal ExceptionDispatchInfo? Error;

        public T Get()
        {
            Error?.Throw();
            return Value!;
        }
    }
}
