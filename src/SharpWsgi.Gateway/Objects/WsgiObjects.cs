using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// The Python types the gateway hands to applications, implemented in C#: start_response, write,
/// wsgi.input, wsgi.errors and wsgi.file_wrapper. Created once per interpreter, GIL held.
/// </summary>
public sealed class WsgiObjects
{
    public ManagedType StartResponseType { get; }
    public ManagedType WriteType { get; }
    public ManagedType InputType { get; }
    public ManagedType ErrorsType { get; }
    public ManagedType FileWrapperType { get; }
    public ManagedType FileWrapperFactoryType { get; }

    /// <summary>The one wsgi.errors stream (writes go to the error log).</summary>
    public PyOwned ErrorStream { get; }
    /// <summary>The wsgi.file_wrapper callable.</summary>
    public PyOwned FileWrapperFactory { get; }

    public WsgiObjects(IGatewayLog errorLog)
    {
        StartResponseType = ManagedType.Create("sharpwsgi.StartResponse",
            "start_response(status, response_headers, exc_info=None) -> write", callable: true, iterator: false);
        WriteType = ManagedType.Create("sharpwsgi.Write",
            "write(data: bytes): send body bytes before the returned iterable (PEP 3333 legacy API)",
            callable: true, iterator: false);
        InputType = ManagedType.Create("sharpwsgi.Input", "wsgi.input: the request body, streamed from the client",
            callable: false, iterator: true, InputStream.Methods);
        ErrorsType = ManagedType.Create("sharpwsgi.Errors",
            "wsgi.errors: text written here goes to the server's error log", callable: false, iterator: false,
            ErrorStreamTarget.Methods);
        FileWrapperType = ManagedType.Create("sharpwsgi.FileWrapper",
            "wsgi.file_wrapper result: iterates filelike.read(blksize); a real file is sent without Python",
            callable: false, iterator: true, FileWrapper.Methods);
        FileWrapperFactoryType = ManagedType.Create("sharpwsgi.FileWrapperFactory",
            "wsgi.file_wrapper(filelike, blksize=8192)", callable: true, iterator: false);

        var errors = ErrorsType.CreateInstance(new ErrorStreamTarget(errorLog));
        ErrorStream = errors.ToOwned();
        var factory = FileWrapperFactoryType.CreateInstance(new FileWrapperFactoryTarget(this));
        FileWrapperFactory = factory.ToOwned();
    }
}

/// <summary>wsgi.errors: a text stream whose lines reach the error log.</summary>
internal sealed class ErrorStreamTarget : IPyMethods
{
    // _log(levelno, text) is not WSGI's: the logging handler the gateway installs keeps the record's level with it.
    public static readonly string[] Methods = { "write", "writelines", "flush", "_log" };
    private readonly IGatewayLog _log;
    private readonly System.Text.StringBuilder _pending = new();

    public ErrorStreamTarget(IGatewayLog log) => _log = log;

    public NewRef Invoke(int index, BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        switch (index)
        {
            case 0:
                if (PyArgs.Count(args) != 1) throw new PyRaiseException(PyErrorKind.TypeError,
                    "write() takes exactly one argument");
                var s = PyArgs.At(args, 0);
                if (!Py.IsStr(s)) throw new PyRaiseException(PyErrorKind.TypeError,
                    $"write() argument must be str, not {Py.TypeNameOf(s)}");
                var text = Py.StrToString(s);
                Append(text);
                return Py.Long(text.Length);
            case 1:
                if (PyArgs.Count(args) != 1) throw new PyRaiseException(PyErrorKind.TypeError,
                    "writelines() takes exactly one argument");
                using (var it = Py.GetIter(PyArgs.At(args, 0)))
                    while (Py.IterNext(it, out var line))
                        using (line)
                        {
                            if (!Py.IsStr(line)) throw new PyRaiseException(PyErrorKind.TypeError,
                                "writelines() items must be str");
                            Append(Py.StrToString(line));
                        }
                return Py.None.NewReference();
            case 2:
                Flush();
                return Py.None.NewReference();
            default:
                if (PyArgs.Count(args) != 2 || !Py.IsInt(PyArgs.At(args, 0)) || !Py.IsStr(PyArgs.At(args, 1)))
                    throw new PyRaiseException(PyErrorKind.TypeError, "_log(levelno, text)");
                var levelno = Py.AsLong(PyArgs.At(args, 0));
                _log.Write(levelno >= 50 ? GatewayLogLevel.Critical : levelno >= 40 ? GatewayLogLevel.Error
                    : levelno >= 30 ? GatewayLogLevel.Warning : levelno >= 20 ? GatewayLogLevel.Information
                    : GatewayLogLevel.Debug, Py.StrToString(PyArgs.At(args, 1)));
                return Py.None.NewReference();
        }
    }

    private void Append(string text)
    {
        lock (_pending)
        {
            _pending.Append(text);
            var all = _pending.ToString();
            var lastNewline = all.LastIndexOf('\n');
            if (lastNewline < 0) return;
            _pending.Clear().Append(all, lastNewline + 1, all.Length - lastNewline - 1);
            foreach (var line in all[..lastNewline].Split('\n'))
                _log.Error(line);
        }
    }

    private void Flush()
    {
        lock (_pending)
        {
            if (_pending.Length == 0) return;
            _log.Error(_pending.ToString());
            _pending.Clear();
        }
    }
}

/// <summary>wsgi.file_wrapper(filelike, blksize=8192).</summary>
internal sealed class FileWrapperFactoryTarget : IPyCallable
{
    private readonly WsgiObjects _objects;
    public FileWrapperFactoryTarget(WsgiObjects objects) => _objects = objects;

    public NewRef Call(BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        int n = PyArgs.Count(args);
        if (n < 1 || n > 2) throw new PyRaiseException(PyErrorKind.TypeError,
            "file_wrapper(filelike, blksize=8192) takes 1 or 2 arguments");
        long blksize = 8192;
        var blk = n == 2 ? PyArgs.At(args, 1) : PyArgs.Keyword(kwargs, "blksize");
        if (!blk.IsNull)
        {
            if (!Py.IsInt(blk)) throw new PyRaiseException(PyErrorKind.TypeError, "blksize must be an int");
            blksize = Py.AsLong(blk);
            if (blksize <= 0) throw new PyRaiseException(PyErrorKind.ValueError, "blksize must be positive");
        }
        var filelike = PyArgs.At(args, 0).NewReference();
        return _objects.FileWrapperType.CreateInstance(
            new FileWrapper(filelike.ToOwned(), (int)Math.Min(blksize, 16 * 1024 * 1024)));
    }
}

/// <summary>The object wsgi.file_wrapper returns: iterable over filelike.read(blksize), with close().</summary>
public sealed class FileWrapper : IPyIterator, IPyMethods
{
    public static readonly string[] Methods = { "close" };
    public PyOwned FileLike { get; }
    public int BlockSize { get; }

    public FileWrapper(PyOwned fileLike, int blockSize) { FileLike = fileLike; BlockSize = blockSize; }

    public bool Next(BorrowedRef self, out NewRef item)
    {
        using var read = Py.GetAttr(FileLike, "read");
        using var size = Py.Long(BlockSize);
        var data = Py.Call(read, size);
        if (!Py.IsBytes(data) || Py.BytesSpan(data).Length == 0)
        {
            var isBytes = Py.IsBytes(data);
            data.Dispose();
            if (!isBytes) throw new PyRaiseException(PyErrorKind.TypeError,
                "file_wrapper: filelike.read() must return bytes");
            item = default;
            return false;
        }
        item = data;
        return true;
    }

    public NewRef Invoke(int index, BorrowedRef self, BorrowedRef args, BorrowedRef kwargs)
    {
        using var name = Py.Str("close");
        if (Py.TryGetAttr(FileLike, name, out var close))
            using (close) { using var r = Py.Call(close); }
        return Py.None.NewReference();
    }
}
