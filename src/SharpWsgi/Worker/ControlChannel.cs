using System.IO.Pipes;
using System.Text;

namespace SharpWsgi.Worker;

/// <summary>
/// The worker's line-based pipe to its supervisor: "ready", "beat", "recycle REASON". If the supervisor is
/// gone (the write fails) the worker exits: an orphaned worker must not go on serving unsupervised.
/// </summary>
public sealed class ControlChannel
{
    public const string HandleVariable = "SHARPWSGI_CONTROL_FD";
    private readonly Stream? _pipe;
    private readonly object _gate = new();

    private ControlChannel(Stream? pipe) => _pipe = pipe;

    public static ControlChannel FromEnvironment()
    {
        var handle = Environment.GetEnvironmentVariable(HandleVariable);
        if (string.IsNullOrEmpty(handle)) return new ControlChannel(null);
        Environment.SetEnvironmentVariable(HandleVariable, null);
        return new ControlChannel(new AnonymousPipeClientStream(PipeDirection.Out, handle));
    }

    public void Send(string message)
    {
        if (_pipe == null) return;
        var bytes = Encoding.UTF8.GetBytes(message + "\n");
        lock (_gate)
        {
            try
            {
                _pipe.Write(bytes);
                _pipe.Flush();
            }
            catch (IOException)
            {
                Console.Error.WriteLine($"[sharpwsgi worker {Environment.ProcessId}] supervisor is gone; exiting");
                Environment.Exit(0);
            }
        }
    }
}
