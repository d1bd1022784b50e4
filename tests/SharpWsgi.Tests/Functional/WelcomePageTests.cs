using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using SharpWsgi.Tests.Infrastructure;
using Xunit.Abstractions;

namespace SharpWsgi.Tests.Functional;

/// <summary>
/// The welcome app (no APP): its next steps are in the page, and a real browser (Debian's headless chromium,
/// installed by test.sh) renders it: a screenshot of the expected size, with the styled header and page
/// background where the CSS puts them.
/// </summary>
public sealed class WelcomePageTests
{
    private readonly ITestOutputHelper _out;
    public WelcomePageTests(ITestOutputHelper output) => _out = output;

    [Fact]
    public void Welcome_Page_ListsNextStepsAndIsSelfContained()
    {
        using var server = ServerProcess.Start(Array.Empty<string>());
        var r = Http.Get(server.Port, "/");
        Assert.Equal(200, r.Status);
        var html = r.BodyText;
        foreach (var text in new[] { "<h2>Next steps</h2>", "Serve your own app", "sharpwsgi myapp:application",
                     "<h3>Flask</h3>", "sharpwsgi app:app", "<h3>Django</h3>", "mysite.wsgi", "--check-config",
                     "--print-config", "README.md", "docs/settings.md", "--help", "This request's environ" })
            Assert.Contains(text, html);
        // Nothing fetched from elsewhere: no scripts, stylesheets, images or fonts.
        foreach (var external in new[] { "<script", "<link", "<img", "@import", "url(" })
            Assert.DoesNotContain(external, html);
    }

    [Fact]
    public void Welcome_Page_RendersInHeadlessChromium()
    {
        var chromium = FindOnPath("chromium") ??
            throw new InvalidOperationException("chromium is not installed (test.sh installs Debian's chromium)");
        using var server = ServerProcess.Start(Array.Empty<string>());
        var work = Directory.CreateTempSubdirectory("sharpwsgi-chromium-");
        try
        {
            var png = Path.Combine(work.FullName, "welcome.png");
            // --headless=new is the current mode; an older chromium knows only --headless.
            string log = "";
            foreach (var mode in new[] { "--headless=new", "--headless" })
            {
                log = RunChromium(chromium, mode, work.FullName, png, server.BaseUri);
                if (File.Exists(png) && new FileInfo(png).Length > 0) break;
            }
            Assert.True(File.Exists(png), "chromium wrote no screenshot:\n" + log);

            var image = Png.Decode(File.ReadAllBytes(png));
            Assert.Equal(1280, image.Width);
            Assert.Equal(900, image.Height);
            var colours = image.DistinctColours(limit: 1000);
            Assert.True(colours >= 50, $"the screenshot has only {colours} colours: blank or unstyled");
            // The header's blue-violet gradient at the top, the light page background lower down on the left.
            var (hr, hg, hb) = image.Pixel(20, 20);
            Assert.True(hb > 180 && hr < 120, $"header pixel is rgb({hr},{hg},{hb}), not the blue gradient");
            var (br, bg, bb) = image.Pixel(20, 600);
            Assert.True(br > 230 && bg > 230 && bb > 230, $"page pixel is rgb({br},{bg},{bb}), not the background");
        }
        finally { work.Delete(recursive: true); }
    }

    private string RunChromium(string chromium, string mode, string work, string png, Uri url)
    {
        var psi = new ProcessStartInfo(chromium)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { mode, "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                     $"--user-data-dir={Path.Combine(work, "profile")}", $"--screenshot={png}",
                     "--window-size=1280,900", url.ToString() })
            psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromSeconds(90)))
        {
            process.Kill(entireProcessTree: true); // by its PID: only the browser this test started
            process.WaitForExit(10_000);
        }
        var log = $"$ chromium {string.Join(' ', psi.ArgumentList)}\n{stdout.Result}{stderr.Result}";
        _out.WriteLine(log);
        return log;
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
        .Select(dir => Path.Combine(dir, name)).FirstOrDefault(File.Exists);
}

/// <summary>Just enough of PNG to check a screenshot: 8-bit RGB or RGBA, non-interlaced, all five row filters.
/// </summary>
internal sealed class Png
{
    public int Width { get; }
    public int Height { get; }
    private readonly byte[] _pixels;
    private readonly int _channels;

    private Png(int width, int height, int channels, byte[] pixels)
    {
        Width = width;
        Height = height;
        _channels = channels;
        _pixels = pixels;
    }

    public (int R, int G, int B) Pixel(int x, int y)
    {
        var i = (y * Width + x) * _channels;
        return (_pixels[i], _pixels[i + 1], _pixels[i + 2]);
    }

    public int DistinctColours(int limit)
    {
        var seen = new HashSet<int>();
        for (var i = 0; i < _pixels.Length && seen.Count < limit; i += _channels)
            seen.Add(_pixels[i] << 16 | _pixels[i + 1] << 8 | _pixels[i + 2]);
        return seen.Count;
    }

    public static Png Decode(byte[] file)
    {
        ReadOnlySpan<byte> signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];
        Assert.True(file.AsSpan(0, 8).SequenceEqual(signature), "not a PNG file");
        int width = 0, height = 0, channels = 0;
        using var idat = new MemoryStream();
        for (var at = 8; at + 8 <= file.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at));
            var type = System.Text.Encoding.ASCII.GetString(file, at + 4, 4);
            var data = file.AsSpan(at + 8, length);
            if (type == "IHDR")
            {
                width = (int)BinaryPrimitives.ReadUInt32BigEndian(data);
                height = (int)BinaryPrimitives.ReadUInt32BigEndian(data[4..]);
                Assert.Equal(8, data[8]); // bit depth
                channels = data[9] switch
                {
                    2 => 3,
                    6 => 4,
                    var other => throw new NotSupportedException($"PNG colour type {other}"),
                };
                Assert.Equal(0, data[12]); // not interlaced
            }
            else if (type == "IDAT") idat.Write(data);
            else if (type == "IEND") break;
            at += 12 + length; // length, type, data, CRC
        }
        Assert.True(width > 0 && height > 0, "the PNG has no IHDR");
        idat.Position = 0;
        using var inflated = new MemoryStream();
        using (var z = new ZLibStream(idat, CompressionMode.Decompress)) z.CopyTo(inflated);
        return new Png(width, height, channels, Unfilter(inflated.ToArray(), width, height, channels));
    }

    /// <summary>Undoes the per-row filters (PNG spec 9.2): None, Sub, Up, Average, Paeth.</summary>
    private static byte[] Unfilter(byte[] raw, int width, int height, int bpp)
    {
        var stride = width * bpp;
        Assert.True(raw.Length >= height * (stride + 1), "the PNG image data is short");
        var pixels = new byte[height * stride];
        for (var y = 0; y < height; y++)
        {
            var filter = raw[y * (stride + 1)];
            var src = y * (stride + 1) + 1;
            var row = y * stride;
            for (var x = 0; x < stride; x++)
            {
                int a = x >= bpp ? pixels[row + x - bpp] : 0;
                int b = y > 0 ? pixels[row - stride + x] : 0;
                int c = x >= bpp && y > 0 ? pixels[row - stride + x - bpp] : 0;
                int predictor = filter switch
                {
                    0 => 0,
                    1 => a,
                    2 => b,
                    3 => (a + b) / 2,
                    4 => Paeth(a, b, c),
                    _ => throw new NotSupportedException($"PNG row filter {filter}"),
                };
                pixels[row + x] = (byte)(raw[src + x] + predictor);
            }
        }
        return pixels;
    }

    private static int Paeth(int a, int b, int c)
    {
        int p = a + b - c, pa = Math.Abs(p - a), pb = Math.Abs(p - b), pc = Math.Abs(p - c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
    }
}
