using System.Buffers;
using System.Text;
using Microsoft.Extensions.Logging;
using SharpWsgi.Gateway.Environ;
using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Runs one request through the app on a Python thread (GIL held): environ, the call, the body,
/// and close() on the iterable exactly once on every path. Errors before the headers are sent become
/// a 500; after, the connection is aborted. Either way the traceback goes to the error log.
/// </summary>
public sealed class RequestRunner
{
    private static readonly byte[] InternalErrorBody = Encoding.ASCII.GetBytes("Internal Server Error\n");
    private readonly PyOwned _app;
    private readonly WsgiObjects _objects;
    private readonly EnvironBuilder _environ;
    private readonly ILogger _log;
    private readonly PyOwned _closeName;

    private static readonly byte[] QueueTimeoutBody = Encoding.ASCII.GetBytes("Service Unavailable: the request waited too long for a Python thread\n");
    private readonly long _queueTimeoutTicks;
    private readonly PyOwned _timeoutClass;

    public RequestRunner(PyOwned app, WsgiObjects objects, EnvironBuilder environ, ILogger log, WsgiOptions options, PyOwned timeoutClass)
    {
        _queueTimeoutTicks = (long)(options.QueueTimeout * System.Diagnostics.Stopwatch.Frequency);
        _timeoutClass = timeoutClass;
        _app = app;
        _objects = objects;
        _environ = environ;
        _log = log;
        _closeName = Py.Intern("close");
    }

    public void Run(WsgiExchange exchange)
    {
        DecRefQueue.Drain();
        if (_queueTimeoutTicks > 0 && System.Diagnostics.Stopwatch.GetTimestamp() - exchange.QueuedAt > _queueTimeoutTicks)
        {
            _log.LogWarning("{Method} {Target} waited more than the queue timeout for a Python thread: 503", exchange.LogMethod, exchange.LogTarget);
            exchange.Finish(SendPlain(exchange, 503, QueueTimeoutBody));
            return;
        }
        var input = new InputStream(exchange);
        var response = new ResponseState(exchange, _objects, _log);
        var outcome = ExchangeOutcome.Completed;
        NewRef inputObj = default, environ = default, startResponse = default, result = default;
        try
        {
            inputObj = _objects.InputType.CreateInstance(input);
            environ = _environ.Build(exchange, inputObj);
            startResponse = _objects.StartResponseType.CreateInstance(response);
            try
            {
                result = Py.Call(_app, environ, startResponse);
            }
            catch (PythonException e)
            {
                outcome = Fail(exchange, response, input, e, "calling the application");
                return;
            }
            try
            {
                SendBody(response, result);
                outcome = Finish(exchange, response);
            }
            catch (PythonException e) { outcome = Fail(exchange, response, input, e, "iterating the response"); }
            catch (PyRaiseException e) { outcome = Fail(exchange, response, input, e, "sending the response"); }
            catch (RequestAbandonedException) { outcome = ExchangeOutcome.Aborted; }
            catch (ClientDisconnectedException)
            {
                _log.LogDebug("Client disconnected during {Method} {Target}", exchange.LogMethod, exchange.LogTarget);
                outcome = ExchangeOutcome.Aborted;
            }
            finally
            {
                if (!CloseIterable(result, exchange) && outcome == ExchangeOutcome.Completed && !response.HeadersSent)
                    outcome = ExchangeOutcome.Aborted;
            }
        }
        catch (Exception e) when (e is PythonException or PyRaiseException)
        {
            outcome = Fail(exchange, response, input, e, "preparing the request");
        }
        catch (Exception e)
        {
            _log.LogError(e, "Internal error handling {Method} {Target}", exchange.LogMethod, exchange.LogTarget);
            outcome = TrySendInternalError(exchange, response);
        }
        finally
        {
            response.Finished = true;
            response.DisposePython();
            input.Finish();
            result.Dispose();
            startResponse.Dispose();
            environ.Dispose();
            inputObj.Dispose();
            exchange.Finish(outcome);
        }
    }

    /// <summary>The body: lists and tuples are gathered under one GIL hold; other iterables stream chunk by chunk.</summary>
    private void SendBody(ResponseState response, BorrowedRef result)
    {
        if (Py.IsExactList(result) || Py.IsExactTuple(result))
        {
            bool isList = Py.IsExactList(result);
            var n = isList ? Py.ListSize(result) : Py.TupleSize(result);
            long total = 0;
            for (nint i = 0; i < n; i++)
            {
                var item = isList ? Py.ListItem(result, i) : Py.TupleItem(result, i);
                if (!Py.IsBytes(item)) throw NotBytes(item);
                total += Py.BytesSpan(item).Length;
            }
            // A single-element body of known size gets a Content-Length (PEP 3333 allows the server to add it).
            if (!response.WriteUsed && n <= 1) response.SendHeaders(knownLength: total);
            for (nint i = 0; i < n; i++)
            {
                var item = isList ? Py.ListItem(result, i) : Py.TupleItem(result, i);
                response.WriteBody(Py.BytesSpan(item), flush: false);
                if (response.Overrun) break;
            }
            return;
        }

        if (_objects.FileWrapperType.IsInstance(result) && TrySendFile(response, (FileWrapper)ManagedType.TargetOf(result)!))
            return;

        using var iterator = Py.GetIter(result);
        while (Py.IterNext(iterator, out var chunk))
        {
            using (chunk)
            {
                if (!Py.IsBytes(chunk)) throw NotBytes(chunk);
                var data = Py.BytesSpan(chunk);
                if (data.Length == 0) continue;
                response.WriteBody(data, flush: true);
                if (response.Overrun) break;
            }
        }
    }

    private static PyRaiseException NotBytes(BorrowedRef item) =>
        new(PyErrorKind.TypeError, $"the application's iterable must yield bytes, not {Py.TypeNameOf(item)}");

    /// <summary>wsgi.file_wrapper over a real file: the bytes go from the file to the socket without Python or the GIL.</summary>
    private bool TrySendFile(ResponseState response, FileWrapper wrapper)
    {
        using var filenoName = Py.Str("fileno");
        if (!Py.TryGetAttr(wrapper.FileLike, filenoName, out var fileno)) return false;
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
        var sender = FileSender.TryOpen(fd);
        if (sender == null) return false;
        using (sender)
        {
            var remaining = Math.Max(0, sender.Length - position);
            if (response.DeclaredLength >= 0) remaining = Math.Min(remaining, response.DeclaredLength);
            if (response.DeclaredLength < 0 && !response.WriteUsed) response.SendHeaders(knownLength: remaining);
            else response.SendHeaders();
            sender.Send(response, position, remaining);
        }
        return true;
    }

    private ExchangeOutcome Finish(WsgiExchange exchange, ResponseState response)
    {
        if (!response.HeadersSent) response.SendHeaders(knownLength: response.WriteUsed ? -1 : 0);
        if (response.Overrun)
        {
            _log.LogWarning("{Method} {Target}: the application sent more than its Content-Length ({Length}); body truncated and connection closed",
                exchange.LogMethod, exchange.LogTarget, response.DeclaredLength);
            return ExchangeOutcome.CompletedThenClose;
        }
        if (response.DeclaredLength >= 0 && response.BytesSent < response.DeclaredLength && !exchange.IsHeadRequest
            && response.Status != 304 && response.Status != 204)
        {
            _log.LogError("{Method} {Target}: the application sent {Sent} bytes of its Content-Length {Length}; connection closed",
                exchange.LogMethod, exchange.LogTarget, response.BytesSent, response.DeclaredLength);
            return ExchangeOutcome.Aborted;
        }
        return ExchangeOutcome.Completed;
    }

    private ExchangeOutcome Fail(WsgiExchange exchange, ResponseState response, InputStream input, Exception e, string stage)
    {
        if (exchange.IsAbandoned)
        {
            var what = e is PythonException te && te.Matches(_timeoutClass) ? "was interrupted by RequestTimeout" : $"ended with {e.Message}";
            _log.LogWarning("Timed-out request {Method} {Target} {What}", exchange.LogMethod, exchange.LogTarget, what);
            return ExchangeOutcome.Aborted;
        }
        if (input.ClientErrorStatus is int status and >= 400 and < 500)
        {
            _log.LogInformation("{Method} {Target}: malformed request body ({Status}); the application's error is not logged as a server error",
                exchange.LogMethod, exchange.LogTarget, status);
            return response.HeadersSent ? ExchangeOutcome.Aborted : SendPlain(exchange, status, Encoding.ASCII.GetBytes("Bad Request\n"));
        }
        if (response.ClientGone)
        {
            _log.LogDebug("Client disconnected during {Method} {Target}", exchange.LogMethod, exchange.LogTarget);
            return ExchangeOutcome.Aborted;
        }
        var detail = e is PythonException pe ? pe.Traceback.TrimEnd() : $"{e.GetType().Name}: {e.Message}";
        if (e is PyRaiseException re) detail = $"{re.Kind}: {re.Message}";
        _log.LogError("Error handling request {Method} {Target} ({Stage}):\n{Traceback}", exchange.LogMethod, exchange.LogTarget, stage, detail);
        return TrySendInternalError(exchange, response);
    }

    private static ExchangeOutcome TrySendInternalError(WsgiExchange exchange, ResponseState response)
    {
        if (response.HeadersSent) return ExchangeOutcome.Aborted;
        return SendPlain(exchange, 500, InternalErrorBody);
    }

    /// <summary>A short text/plain answer of the server's own (500, 503), when the app's headers were not sent.</summary>
    internal static ExchangeOutcome SendPlain(WsgiExchange exchange, int status, byte[] body)
    {
        try { exchange.Enter(); }
        catch (RequestAbandonedException) { return ExchangeOutcome.Aborted; }
        try
        {
            exchange.SetResponseHead(status, null, new KeyValuePair<string, string>[]
            {
                new("Content-Type", "text/plain"),
                new("Content-Length", body.Length.ToString()),
            });
            if (!exchange.IsHeadRequest) ResponseState.CopyTo(exchange.ResponseBody, body);
        }
        finally { exchange.Exit(); }
        return ExchangeOutcome.Completed;
    }

    /// <summary>Calls result.close() if it has one; false if close() raised (logged).</summary>
    private bool CloseIterable(BorrowedRef result, WsgiExchange exchange)
    {
        if (result.IsNull || Py.IsExactList(result) || Py.IsExactTuple(result)) return true;
        try
        {
            if (!Py.TryGetAttr(result, _closeName, out var close)) return true;
            using (close)
            {
                using var r = Py.Call(close);
            }
            return true;
        }
        catch (PythonException e)
        {
            _log.LogError("Error closing the response iterable of {Method} {Target}:\n{Traceback}", exchange.LogMethod, exchange.LogTarget, e.Traceback.TrimEnd());
            return false;
        }
    }
}
