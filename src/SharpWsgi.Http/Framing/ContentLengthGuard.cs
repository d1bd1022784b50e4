using System.Buffers;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;

namespace SharpWsgi.Http;

/// <summary>
/// Reads one HTTP/1.x request head from its raw bytes, fed in pieces of any size: finds where the head ends and
/// whether a Content-Length value is other than <c>1*DIGIT</c> with optional SP/HTAB around it (RFC 9110 §8.6).
/// Only Content-Length lines are looked into; every other line is skipped to its LF. Line ends are Kestrel's to
/// police (it refuses bare LF and lone CR in a head), so a line here simply ends at LF.
/// </summary>
public sealed class ContentLengthScanner
{
    private const byte CR = (byte)'\r', LF = (byte)'\n';
    /// <summary>What a refusal quotes of the value, at most.</summary>
    private const int ShownBytes = 32;

    private enum Phase { BeforeRequestLine, RestOfLine, LineStart, BlankLine, Name, Value, Done }
    private enum ValuePart { Leading, Digits, Trailing, Bad }

    private static ReadOnlySpan<byte> FieldName => "content-length"u8;

    private readonly byte[] _shown = new byte[ShownBytes];
    private Phase _phase;
    private int _matched;
    private ValuePart _value;
    private bool _pendingCr;
    private int _shownLength;
    private bool _shownCut;

    /// <summary>Why the head must be refused (its first bad Content-Length), or null.</summary>
    public string? Problem { get; private set; }

    /// <summary>The blank line that ends the head has been read.</summary>
    public bool HeadComplete => _phase == Phase.Done;

    /// <summary>Starts a new head.</summary>
    public void Reset()
    {
        _phase = Phase.BeforeRequestLine;
        Problem = null;
    }

    /// <summary>Reads head bytes; returns how many belong to the head (all of them until it ends).</summary>
    public int Feed(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            switch (_phase)
            {
                case Phase.BeforeRequestLine:
                    // Kestrel skips CR and LF before a request line (e.g. a CRLF a client sent after a body).
                    var first = bytes[i..].IndexOfAnyExcept(CR, LF);
                    if (first < 0) return bytes.Length;
                    i += first;
                    _phase = Phase.RestOfLine; // the request line
                    break;
                case Phase.RestOfLine:
                    var lf = bytes[i..].IndexOf(LF);
                    if (lf < 0) return bytes.Length;
                    i += lf + 1;
                    _phase = Phase.LineStart;
                    break;
                case Phase.LineStart:
                    var b = bytes[i];
                    if (b == CR) { _phase = Phase.BlankLine; i++; }
                    else if (b == LF) { _phase = Phase.Done; return i + 1; }
                    else if ((b | 0x20) == 'c') { _phase = Phase.Name; _matched = 1; i++; }
                    else _phase = Phase.RestOfLine;
                    break;
                case Phase.BlankLine:
                    if (bytes[i] == LF) { _phase = Phase.Done; return i + 1; }
                    _phase = Phase.RestOfLine; // a lone CR: Kestrel refuses the head
                    break;
                case Phase.Name:
                    i = MatchName(bytes, i);
                    break;
                case Phase.Value:
                    i = ReadValue(bytes, i);
                    break;
                case Phase.Done:
                    return i;
            }
        }
        return bytes.Length;
    }

    /// <summary>Continues matching "content-length:" (any case); a line that turns out to be another field is
    /// skipped.</summary>
    private int MatchName(ReadOnlySpan<byte> bytes, int i)
    {
        for (; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (_matched == FieldName.Length)
            {
                // Kestrel refuses whitespace before the colon, so "Content-Length" and ':' are adjacent.
                if (b != ':') { _phase = Phase.RestOfLine; return i; }
                _phase = Phase.Value;
                _value = ValuePart.Leading;
                _pendingCr = false;
                _shownLength = 0;
                _shownCut = false;
                return i + 1;
            }
            var lower = (uint)(b - 'A') <= 'Z' - 'A' ? (byte)(b | 0x20) : b;
            if (lower != FieldName[_matched]) { _phase = Phase.RestOfLine; return i; }
            _matched++;
        }
        return i;
    }

    private int ReadValue(ReadOnlySpan<byte> bytes, int i)
    {
        for (; i < bytes.Length; i++)
        {
            var b = bytes[i];
            if (b == LF)
            {
                EndValue();
                _phase = Phase.LineStart;
                return i + 1;
            }
            if (_pendingCr) // a CR not followed by LF is part of the value (Kestrel refuses it anyway)
            {
                _pendingCr = false;
                Show(CR);
                _value = ValuePart.Bad;
            }
            if (b == CR) { _pendingCr = true; continue; }
            var space = b is (byte)' ' or (byte)'\t';
            if (_value == ValuePart.Leading && space) continue;
            Show(b);
            _value = _value switch
            {
                ValuePart.Leading or ValuePart.Digits when char.IsAsciiDigit((char)b) => ValuePart.Digits,
                ValuePart.Digits or ValuePart.Trailing when space => ValuePart.Trailing,
                _ => ValuePart.Bad,
            };
        }
        return i;
    }

    private void Show(byte b)
    {
        if (_shownLength < _shown.Length) _shown[_shownLength++] = b;
        else _shownCut = true;
    }

    private void EndValue()
    {
        if (_value is ValuePart.Digits or ValuePart.Trailing || Problem != null) return;
        var shown = new StringBuilder();
        var length = _shownLength;
        if (!_shownCut)
            while (length > 0 && _shown[length - 1] is (byte)' ' or (byte)'\t') length--; // OWS after the value
        foreach (var b in _shown.AsSpan(0, length))
        {
            if (b is >= 0x20 and < 0x7f) shown.Append((char)b);
            else shown.Append($"\\x{b:x2}");
        }
        if (_shownCut) shown.Append("...");
        Problem = $"Content-Length must be digits only (got '{shown}')";
    }
}

/// <summary>What the guard knows of the head a request was parsed from.</summary>
public enum HeadVerdict
{
    /// <summary>Every Content-Length in it was digits only (or it had none).</summary>
    Valid,
    /// <summary>A Content-Length was not digits only: refuse the request and close.</summary>
    Refused,
    /// <summary>The guard is not in step with Kestrel (or stopped): nothing is known; the connection must close
    /// after this response.</summary>
    Unchecked,
}

/// <summary>
/// An HTTP/1.x connection's input as Kestrel reads it. Everything is forwarded; what Kestrel <em>consumes</em> is
/// counted, and the bytes of each request head are fed to a <see cref="ContentLengthScanner"/> as they are consumed
/// (Kestrel consumes a head line by line and nothing of the body before the application runs). Bodies are never
/// framed here: the request code, which runs once Kestrel has parsed a head, says how long the body is
/// (<see cref="BodyFollows"/>) or that it is chunked, whose end it reports when a reader saw it
/// (<see cref="ChunkedBodyEnded"/>); the bytes until the next head are only counted.
/// </summary>
public sealed class ContentLengthGuard : PipeReader
{
    private const long Unknown = -1;

    private readonly PipeReader _inner;
    private readonly ContentLengthScanner _scanner = new();
    /// <summary>The buffer of the last read, against which Kestrel's consumed position is measured.</summary>
    private ReadOnlySequence<byte> _buffer;
    private long _consumed;
    /// <summary>Where the next head starts: the first at the connection's first byte; Unknown while a chunked
    /// body is being read, or a head is.</summary>
    private long _nextHead = 0;
    /// <summary>Where the last head ended, until the request code has taken its verdict.</summary>
    private long _headEnd = Unknown;
    private bool _inHead;
    private bool _awaitingChunkedEnd;
    /// <summary>Out of step: no more checks on this connection (it closes after the current response).</summary>
    private bool _stopped;

    public ContentLengthGuard(PipeReader inner) => _inner = inner;

    /// <summary>Bytes Kestrel has consumed so far.</summary>
    internal long Consumed => _consumed; // for the unit tests: where the guard thinks the connection is

    /// <summary>False when the connection cannot go on to another request: a chunked body not read to its end
    /// (Kestrel drains it, but where it ends is not known here), or the guard was out of step.</summary>
    public bool NextHeadKnown => !_stopped && !_awaitingChunkedEnd;

    /// <summary>
    /// Kestrel has parsed a head and the request code runs: what the head said. At this moment Kestrel has consumed
    /// exactly the head; if it has not (or the scanner did not see the head end), the guard stops.
    /// </summary>
    public HeadVerdict EndOfHead(out string? problem)
    {
        problem = null;
        if (_stopped) return HeadVerdict.Unchecked;
        if (_headEnd == Unknown || _headEnd != _consumed)
        {
            _stopped = true;
            return HeadVerdict.Unchecked;
        }
        problem = _scanner.Problem;
        return problem == null ? HeadVerdict.Valid : HeadVerdict.Refused;
    }

    /// <summary>The head just taken is followed by a body of this length (0: none); the next head comes after
    /// it.</summary>
    public void BodyFollows(long length)
    {
        if (_stopped) return;
        _nextHead = _headEnd + length;
        _headEnd = Unknown;
    }

    /// <summary>The head just taken is followed by a chunked body: its end is learnt from
    /// <see cref="ChunkedBodyEnded"/>.</summary>
    public void ChunkedBodyFollows()
    {
        if (_stopped) return;
        _nextHead = Unknown;
        _headEnd = Unknown;
        _awaitingChunkedEnd = true;
    }

    /// <summary>
    /// A reader of the chunked body saw its end: Kestrel consumed the last chunk and the trailers before it completed
    /// the body (so the count is the body's end), and reads nothing more until the next request. Called on whichever
    /// thread read the body; the body pipe's completion orders it after Kestrel's last consume.
    /// </summary>
    public void ChunkedBodyEnded()
    {
        if (_stopped || !_awaitingChunkedEnd) return;
        _awaitingChunkedEnd = false;
        _nextHead = _consumed;
    }

    private void Observe(SequencePosition consumed)
    {
        var piece = _buffer.Slice(0, consumed);
        var start = _consumed;
        _consumed += piece.Length;
        if (_stopped || piece.IsEmpty) return;
        if (!_inHead)
        {
            if (_nextHead == Unknown || _consumed <= _nextHead) return; // a body, or a head waiting for its request
            if (_nextHead < start)
            {
                _stopped = true; // bytes of the next head went by before the request code said where it starts
                return;
            }
            piece = piece.Slice(_nextHead - start);
            start = _nextHead;
            _nextHead = Unknown;
            _inHead = true;
            _scanner.Reset();
        }
        foreach (var segment in piece)
        {
            var used = _scanner.Feed(segment.Span);
            start += used;
            if (!_scanner.HeadComplete) continue;
            _inHead = false;
            _headEnd = start;
            return;
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        if (!_inner.TryRead(out result)) return false;
        _buffer = result.Buffer;
        return true;
    }

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        var read = _inner.ReadAsync(cancellationToken);
        if (!read.IsCompletedSuccessfully) return ReadAwaited(read);
        var result = read.Result;
        _buffer = result.Buffer;
        return new ValueTask<ReadResult>(result);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))] // no allocation per read that waits
    private async ValueTask<ReadResult> ReadAwaited(ValueTask<ReadResult> read)
    {
        var result = await read.ConfigureAwait(false);
        _buffer = result.Buffer;
        return result;
    }

    // The consumed bytes are read before they are handed back: after the inner AdvanceTo their memory may be reused.
    public override void AdvanceTo(SequencePosition consumed)
    {
        Observe(consumed);
        _inner.AdvanceTo(consumed);
    }

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined)
    {
        Observe(consumed);
        _inner.AdvanceTo(consumed, examined);
    }

    public override void CancelPendingRead() => _inner.CancelPendingRead();
    public override void Complete(Exception? exception = null) => _inner.Complete(exception);
    public override ValueTask CompleteAsync(Exception? exception = null) => _inner.CompleteAsync(exception);
}
