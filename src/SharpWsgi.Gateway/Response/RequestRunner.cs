using System.Diagnostics;
using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Runs one request through the app on a Python thread (GIL held): environ, the call, the body, and close() on the
/// iterable exactly once on every path. Orchestration only: the body rules are the <see cref="ResponseWriter"/>'s,
/// plain error answers are written by the host, and errors are sorted by stage. Before the head is sent an error
/// becomes a 500; after, the connection is aborted. Either way the traceback goes to the error log.
/// </summary>
public sealed class RequestRunner
{
    private readonly PyOwned _app;
    private readonly WsgiObjects _objects;
    private readonly EnvironBuilder _environ;
    private readonly IGatewayLog _log;
    private readonly PyOwned _closeName, _filenoName;
    private readonly long _queueTimeoutTicks;
    private readonly PyOwned _timeoutClass;
    private readonly ResponseBuffering _buffering;
    private readonly IRequestHooks? _hooks;
    [ThreadStatic] private static HeaderNames? _headerNames;

    public RequestRunner(PyOwned app, WsgiObjects objects, EnvironBuilder environ, IGatewayLog log, WsgiOptions options,
        PyOwned timeoutClass, ResponseBuffering buffering, IRequestHooks? hooks = null)
    {
        _hooks = hooks;
        _queueTimeoutTicks = (long)(options.QueueTimeout * Stopwatch.Frequency);
        _timeoutClass = timeoutClass;
        _app = app;
        _objects = objects;
        _environ = environ;
        _log = log;
        _buffering = buffering;
        _closeName = Py.Intern("close");
        _filenoName = Py.Intern("fileno");
    }

    public void Run(RequestLease lease)
    {
        DecRefQueue.Drain();
        if (_queueTimeoutTicks > 0 && Stopwatch.GetTimestamp() - lease.QueuedAt > _queueTimeoutTicks)
        {
            _log.Warning($"{lease.Describe} waited more than the queue timeout for a Python thread: 503");
            lease.TryFinish(ExchangeResult.Plain(ServerAnswer.QueueTimedOut));
            return;
        }
        lease.Exchange.MarkStarted();
        RequestScope.CurrentRequestId = lease.Exchange.RequestId;
        var input = new InputStream(lease);
        var writer = new ResponseWriter(lease, _buffering);
        var startResponse = new StartResponse(writer, _objects, _headerNames ??= new HeaderNames())
        {
            KeepHead = _hooks?.WantsResponseHead == true,
        };
        var result = ExchangeResult.Completed;
        NewRef inputObj = default, environ = default, startResponseObj = default, body = default, hooked = default;
        try
        {
            inputObj = _objects.InputType.CreateInstance(input);
            environ = _environ.Build(lease.Exchange, inputObj);
            startResponseObj = _objects.StartResponseType.CreateInstance(startResponse);
            if (_hooks != null)
            {
                try { hooked = _hooks.Started(environ); }
                catch (PythonException e)
                {
                    result = Fail(lease, writer, input, e, "running the pre_request hook");
                    return;
                }
            }
            try
            {
                body = Py.Call(_app, environ, startResponseObj);
            }
            catch (PythonException e)
            {
                result = Fail(lease, writer, input, e, "calling the application");
                return;
            }
            try
            {
                SendBody(writer, body);
                result = writer.Complete(_log, lease.Describe);
            }
            catch (PythonException e) { result = Fail(lease, writer, input, e, "iterating the response"); }
            catch (PyRaiseException e) { result = Fail(lease, writer, input, e, "sending the response"); }
            catch (RequestAbandonedException) { result = ExchangeResult.Aborted; }
            catch (ClientDisconnectedException e)
            {
                _log.Debug($"Client gone during {lease.Describe}: {e.Message}");
                result = ExchangeResult.Aborted;
            }
            finally
            {
                if (!CloseIterable(body, lease) && result.Outcome == ExchangeOutcome.Completed && !writer.HeadersSent)
                    result = ExchangeResult.Aborted;
            }
        }
        catch (Exception e) when (e is PythonException or PyRaiseException)
        {
            result = Fail(lease, writer, input, e, "preparing the request");
        }
        catch (Exception e)
        {
            _log.Error($"Internal error handling {lease.Describe}: {e}");
            result = writer.HeadersSent ? ExchangeResult.Aborted : InternalError;
        }
        finally
        {
            startResponse.Finished = true;
            input.Finish();
            body.Dispose();
            // Before Finish: the host may log the request as soon as it is finished.
            var abandoned = lease.IsAbandoned;
            if (!abandoned) lease.Exchange.MarkAppDone();
            writer.Finish(result);
            // After the response is the host's (the client is not kept waiting); the exchange is not touched.
            if (!hooked.IsNull) RunFinishedHook(hooked, environ, startResponse, writer, result, abandoned);
            hooked.Dispose();
            RequestScope.CurrentRequestId = null;
            startResponse.DisposePython();
            startResponseObj.Dispose();
            environ.Dispose();
            inputObj.Dispose();
        }
    }

    /// <summary>post_request: the status as the client got it (the app's, or the server's own answer's code).
    /// </summary>
    private void RunFinishedHook(BorrowedRef hooked, BorrowedRef environ, StartResponse startResponse,
        ResponseWriter writer, ExchangeResult result, bool abandoned)
    {
        var code = abandoned ? ServerAnswer.AppTimedOut.Status
            : result.Outcome == ExchangeOutcome.PlainAnswer ? result.Answer!.Status : writer.Status;
        var appAnswered = !abandoned && result.Outcome != ExchangeOutcome.PlainAnswer;
        _hooks!.Finished(hooked, environ, appAnswered ? startResponse.KeptStatus : default, code,
            appAnswered ? startResponse.KeptHeaders : default, writer.BytesSent, writer.DeclaredLength);
    }

    private static readonly ExchangeResult InternalError = ExchangeResult.Plain(ServerAnswer.AppFailed);

    /// <summary>The body: lists and tuples are gathered under one GIL hold; other iterables stream chunk by
    /// chunk.</summary>
    private void SendBody(ResponseWriter writer, BorrowedRef body)
    {
        if (Py.IsExactList(body) || Py.IsExactTuple(body))
        {
            bool isList = Py.IsExactList(body);
            var n = isList ? Py.ListSize(body) : Py.TupleSize(body);
            long total = 0;
            for (nint i = 0; i < n; i++)
            {
                var item = isList ? Py.ListItem(body, i) : Py.TupleItem(body, i);
                if (!Py.IsBytes(item)) throw NotBytes(item);
                total += Py.BytesSpan(item).Length;
            }
            // A single-element body of known size gets a Content-Length (PEP 3333 allows the server to add it).
            if (!writer.WriteUsed && n <= 1) writer.SendHeaders(knownLength: total);
            for (nint i = 0; i < n; i++)
            {
                var item = isList ? Py.ListItem(body, i) : Py.TupleItem(body, i);
                writer.Write(Py.BytesSpan(item), flush: false);
                if (writer.Overrun) break;
            }
            return;
        }

        if (_objects.FileWrapperType.IsInstance(body) && TrySendFile(writer, (FileWrapper)ManagedType.TargetOf(body)!))
            return;

        using var iterator = Py.GetIter(body);
        while (Py.IterNext(iterator, out var chunk))
        {
            using (chunk)
            {
                if (!Py.IsBytes(chunk)) throw NotBytes(chunk);
                var data = Py.BytesSpan(chunk);
                if (data.Length == 0) continue;
                writer.Write(data, flush: true);
                if (writer.Overrun) break;
            }
        }
    }

    private static PyRaiseException NotBytes(BorrowedRef item) =>
        new(PyErrorKind.TypeError, $"the application's iterable must yield bytes, not {Py.TypeNameOf(item)}");

    /// <summary>wsgi.file_wrapper over a real file: the host sends it after this thread is done, without the
    /// GIL.</summary>
    private bool TrySendFile(ResponseWriter writer, FileWrapper wrapper)
    {
        if (!Py.TryGetAttr(wrapper.FileLike, _filenoName, out var fileno)) return false;
        int fd;
        long position;
        using (fileno)
        {
            NewRef fdObj;
            try { fdObj = Py.Call(fileno); }
            catch (PythonException) { return false; } // io.BytesIO and friends: UnsupportedOperation
            using (fdObj)
            {
                if (!Py.IsInt(fdObj)) return false;
                fd = (int)Py.AsLong(fdObj);
            }
            // Start where the file object's position is (the app may have seeked).
            using var tell = Py.GetAttr(wrapper.FileLike, "tell");
            using var pos = Py.Call(tell);
            position = Py.AsLong(pos);
        }
        if (FileSender.TryOpen(fd) is not var (handle, length)) return false;
        var remaining = Math.Max(0, length - position);
        if (writer.DeclaredLength >= 0) remaining = Math.Min(remaining, writer.DeclaredLength);
        if (writer.DeclaredLength < 0 && !writer.WriteUsed) writer.SendHeaders(knownLength: remaining);
        else writer.SendHeaders();
        writer.SendFile(handle, position, remaining);
        return true;
    }

    private ExchangeResult Fail(RequestLease lease, ResponseWriter writer, InputStream input, Exception e, string stage)
    {
        if (lease.IsAbandoned)
        {
            var what = e is PythonException te && te.Matches(_timeoutClass)
                ? "was interrupted by RequestTimeout" : $"ended with {e.Message}";
            _log.Warning($"Timed-out request {lease.Describe} {what}");
            return ExchangeResult.Aborted;
        }
        if (input.ClientError is { } clientError)
        {
            _log.Info($"{lease.Describe}: the request body could not be read ({clientError.Status}: " +
                $"{clientError.Reason}); the application's error is not logged as a server error");
            return writer.HeadersSent ? ExchangeResult.Aborted : ExchangeResult.Plain(clientError.WhileAppRead());
        }
        if (writer.ClientGone)
        {
            _log.Debug($"Client disconnected during {lease.Describe}");
            return ExchangeResult.Aborted;
        }
        var detail = e is PythonException pe ? pe.Traceback.TrimEnd() : $"{e.GetType().Name}: {e.Message}";
        if (e is PyRaiseException re) detail = $"{re.Kind}: {re.Message}";
        _log.Error($"Error handling request {lease.Describe} ({stage}):\n{detail}");
        lease.Exchange.MarkAppRaised(); // not abandoned (checked above): the exchange is still ours
        return writer.HeadersSent ? ExchangeResult.Aborted : InternalError;
    }

    /// <summary>Calls close() on the iterable if it has one; false if close() raised (logged).</summary>
    private bool CloseIterable(BorrowedRef body, RequestLease lease)
    {
        if (body.IsNull || Py.IsExactList(body) || Py.IsExactTuple(body)) return true;
        try
        {
            if (!Py.TryGetAttr(body, _closeName, out var close)) return true;
            using (close)
            {
                using var r = Py.Call(close);
            }
            return true;
        }
        catch (PythonException e)
        {
            _log.Error($"Error closing the response iterable of {lease.Describe}:\n{e.Traceback.TrimEnd()}");
            return false;
        }
    }
}
