using System.Net;

namespace SharpWsgi.Http;

/// <summary>
/// A set of peers from a comma-separated list of addresses and CIDR ranges, or "*" for all: who may set the client
/// address through forwarded headers (--forwarded-allow-ips) or a PROXY header (--proxy-allow-from).
/// </summary>
public sealed class TrustedPeers
{
    private readonly List<IPNetwork> _networks = new();
    private readonly bool _everyone;

    public TrustedPeers(string list)
    {
        foreach (var item in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            if (item == "*") _everyone = true;
            else if (IPAddress.TryParse(item, out var address))
                _networks.Add(new IPNetwork(Normalize(address), Normalize(address).AddressFamily ==
                    System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128));
            else if (IPNetwork.TryParse(item, out var network)) _networks.Add(network);
            // The registry validated the list; anything else cannot reach here.
        }
    }

    public bool IsEmpty => !_everyone && _networks.Count == 0;

    public bool Contains(IPAddress? address)
    {
        if (_everyone) return true;
        if (address == null) return false;
        address = Normalize(address);
        foreach (var network in _networks)
            if (network.Contains(address)) return true;
        return false;
    }

    /// <summary>An IPv4 address seen through a dual-stack socket (::ffff:a.b.c.d) is matched as IPv4.</summary>
    public static IPAddress Normalize(IPAddress address) =>
        address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
