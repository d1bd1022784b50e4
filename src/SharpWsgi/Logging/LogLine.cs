using System.Buffers;
using System.Buffers.Text;

namespace SharpWsgi.Logging;

/// <summary>
/// One log line built in a pooled byte array. Every value is escaped to printable ASCII, so a line stays one line
/// and JSON stays valid whatever bytes a client sent. Hand the array over with <see cref="Detach"/>.
/// </summary>
public struct LogLine
{
    private byte[] _buffer;
    private int _length;
    // False while the line is in a caller's scratch array, true once it lives in a rented one.
    private bool _rented;

    public LogLine(int capacity)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(capacity);
        _length = 0;
        _rented = true;
    }

    /// <summary>A line written into <paramref name="scratch"/> (the caller's, reused line after line); it moves to
    /// a rented array only if it outgrows it. Give it back with <see cref="Release"/>.</summary>
    public LogLine(byte[] scratch)
    {
        _buffer = scratch;
        _length = 0;
        _rented = false;
    }

    public readonly int Length => _length;
    public readonly ReadOnlySpan<byte> Written => _buffer.AsSpan(0, _length);

    private Span<byte> Reserve(int count)
    {
        if (_length + count > _buffer.Length)
        {
            var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + count));
            _buffer.AsSpan(0, _length).CopyTo(bigger);
            if (_rented) ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = bigger;
            _rented = true;
        }
        return _buffer.AsSpan(_length);
    }

    public void Raw(ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(Reserve(bytes.Length));
        _length += bytes.Length;
    }

    public void Raw(byte b)
    {
        Reserve(1)[0] = b;
        _length++;
    }

    /// <summary>ASCII text known to need no escaping (names, numbers, our own words).</summary>
    public void Ascii(string text)
    {
        System.Text.Ascii.FromUtf16(text, Reserve(text.Length), out var written);
        _length += written;
    }

    public void Number(long value)
    {
        Utf8Formatter.TryFormat(value, Reserve(20), out var n);
        _length += n;
    }

    /// <summary>Exactly <paramref name="count"/> digits, zero-padded (a fraction).</summary>
    public void Digits(long value, int count)
    {
        var span = Reserve(count);
        for (var i = count - 1; i >= 0; i--, value /= 10) span[i] = (byte)('0' + value % 10);
        _length += count;
    }

    /// <summary>Milliseconds with three decimals, from Stopwatch ticks.</summary>
    public void Milliseconds(long ticks)
    {
        var micros = ticks * 1_000_000 / System.Diagnostics.Stopwatch.Frequency;
        Number(micros / 1000);
        Raw((byte)'.');
        Digits(micros % 1000, 3);
    }

    private static ReadOnlySpan<byte> Hex => "0123456789abcdef"u8;

    // Printable ASCII other than the quote and the backslash: copied as they are, a run at a time.
    private static readonly SearchValues<char> Plain = SearchValues.Create(
        " !#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[]^_`abcdefghijklmnopqrstuvwxyz{|}~");

    /// <summary>Copies the plain run at the start of <paramref name="value"/>; returns what follows it.</summary>
    private ReadOnlySpan<char> CopyPlain(ReadOnlySpan<char> value)
    {
        var n = value.IndexOfAnyExcept(Plain);
        var run = n < 0 ? value : value[..n];
        if (!run.IsEmpty)
        {
            System.Text.Ascii.FromUtf16(run, Reserve(run.Length), out var written);
            _length += written;
        }
        return n < 0 ? default : value[n..];
    }

    /// <summary>Text-log escaping: quote and backslash get a backslash; control and non-ASCII characters (latin-1
    /// bytes, as PEP 3333 reads them) become \xHH.</summary>
    public void Text(ReadOnlySpan<char> value) => Escaped(value, json: false);

    /// <summary>A JSON string (with its quotes), ASCII only: anything outside printable ASCII is \uXXXX.</summary>
    public void Json(ReadOnlySpan<char> value)
    {
        Raw((byte)'"');
        Escaped(value, json: true);
        Raw((byte)'"');
    }

    private void Escaped(ReadOnlySpan<char> value, bool json)
    {
        while (!(value = CopyPlain(value)).IsEmpty)
        {
            var c = value[0];
            value = value[1..];
            if (c is '"' or '\\')
            {
                Raw((byte)'\\');
                Raw((byte)c);
            }
            else if (c <= 0xff && !json)
            {
                var s = Reserve(4);
                s[0] = (byte)'\\'; s[1] = (byte)'x'; s[2] = Hex[c >> 4]; s[3] = Hex[c & 15];
                _length += 4;
            }
            else UnicodeEscape(c);
        }
    }

    private void UnicodeEscape(char c)
    {
        var s = Reserve(6);
        s[0] = (byte)'\\'; s[1] = (byte)'u';
        s[2] = Hex[c >> 12]; s[3] = Hex[(c >> 8) & 15]; s[4] = Hex[(c >> 4) & 15]; s[5] = Hex[c & 15];
        _length += 6;
    }

    /// <summary>Ends a line made over a scratch array: a rented array it grew into goes back to the pool.</summary>
    public void Release()
    {
        if (_rented) ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = null!;
    }

    /// <summary>The array and its length; the caller owns the array now (return it to the shared pool). Only for
    /// a line made with a capacity (a rented array).</summary>
    public (byte[] Buffer, int Length) Detach()
    {
        var result = (_buffer, _length);
        _buffer = null!;
        return result;
    }
}
