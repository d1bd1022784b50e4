// The server (src/SharpWsgi) runs on Linux only; so do its tests.
[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]
