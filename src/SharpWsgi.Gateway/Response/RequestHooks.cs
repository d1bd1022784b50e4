using SharpWsgi.Python;

namespace SharpWsgi.Gateway;

/// <summary>
/// Code the host runs around each request on its Python thread, GIL held (gunicorn's pre_request and post_request
/// hooks). One per interpreter, made by <see cref="WsgiOptions.RequestHooks"/> there; absent when none is
/// configured, so a request pays nothing for the feature.
/// </summary>
public interface IRequestHooks
{
    /// <summary>Whether <see cref="Finished"/> wants the status and headers the app gave start_response (kept
    /// for it until the request ends).</summary>
    bool WantsResponseHead { get; }

    /// <summary>Before the app is called, with its environ; returns what <see cref="Finished"/> gets back (a new
    /// reference). A <see cref="PythonException"/> fails the request as the app's own error would (500).</summary>
    NewRef Started(BorrowedRef environ);

    /// <summary>After the response went out to the host. <paramref name="status"/> is the app's status str, or
    /// null when the server answered itself (then <paramref name="statusCode"/> says with what); the headers are
    /// the app's list or null; <paramref name="declaredLength"/> is its Content-Length or -1. Never throws: what
    /// the hook raises is logged.</summary>
    void Finished(BorrowedRef started, BorrowedRef environ, BorrowedRef status, int statusCode, BorrowedRef headers,
        long bodyBytes, long declaredLength);
}
